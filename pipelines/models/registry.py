"""The Model Registry approval flow: list the packages Regula registered, approve or reject them.

Approval is guarded: a package the pipeline did not accept (a best candidate registered for review), one whose
recorded generalization gap is above the policy's maximum by more than its recorded standard error (the rule the
evaluation step decides with, steps/quality.py), or whose validation quality does not beat the recorded
baseline by the recorded lift (and reach the recorded minimum), is refused
unless forced. The policy is the one recorded with the package at registration
(`regula:max_gap`, `regula:min_lift`, `regula:min_quality`); `--max-gap` can
only tighten it. A package missing any of these numbers (or holding one that is
not a number) is refused too, and so is re-approving a rejected package without
--force and a note: the guard fails closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pipelines.errors import NotFound, Refused, RegulaError
from steps.quality import gap_exceeds


class RegistryError(RegulaError):
    """A mistake in what `regula models` was asked (a usage error)."""


class PackageNotFound(RegistryError, NotFound):
    """The group, or the package in it, does not exist."""


class ApprovalRefused(RegistryError, Refused):
    """The approval guard said no: the package's policy, its history, or a change while the command ran."""


def _float(metadata: dict, key: str) -> float | None:
    """The recorded number, or None when it is missing or not a finite number (the guard then refuses)."""
    try:
        value = float(metadata[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _row(package: dict) -> dict:
    """A described model package, with what Regula recorded about it at registration."""
    metadata = package.get("CustomerMetadataProperties", {})
    return {
        "arn": package["ModelPackageArn"],
        "version": package.get("ModelPackageVersion"),
        "status": package["ModelApprovalStatus"],
        "problem_type": metadata.get("regula:problem_type"),
        "gap": _float(metadata, "regula:gap"),
        "gap_se": _float(metadata, "regula:gap_se") or 0.0,  # packages registered before it was recorded: none
        # recorded since candidates can be registered; before, only accepted rounds were (decision "register")
        "accepted": metadata.get("regula:accepted", str(metadata.get("regula:decision") == "register").lower()),
        "max_gap": _float(metadata, "regula:max_gap"),
        # the gap the round was held to: above MaxGap where the linear reference excused it (before: MaxGap)
        "gap_limit": _float(metadata, "regula:gap_limit"),
        "quality_metric": metadata.get("regula:quality_metric"),
        "val_quality": _float(metadata, "regula:val_quality"),
        "baseline_quality": _float(metadata, "regula:baseline_quality"),
        "test_quality": _float(metadata, "regula:test_quality"),
        "min_lift": _float(metadata, "regula:min_lift"),
        "min_quality": _float(metadata, "regula:min_quality"),
        "round": metadata.get("regula:round"),
        "target": metadata.get("regula:target"),
        "data": metadata.get("regula:data"),
        "code_version": metadata.get("regula:code_version"),
        "created": str(package.get("CreationTime", "")),
        "modified": str(package.get("LastModifiedTime", "")),
        "metadata": metadata,
    }


def list_packages(sagemaker, group: str) -> list[dict]:
    """Every package of `group`, newest first, with what Regula recorded about it."""
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError:
        raise PackageNotFound(f"model package group {group} does not exist") from None
    pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
    summaries = [summary for page in pages for summary in page["ModelPackageSummaryList"]]
    rows = [_row(sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])) for s in summaries]
    return sorted(rows, key=lambda r: r["version"] or 0, reverse=True)


def table(rows: list[dict]) -> str:
    """The packages, one line each: whether the pipeline accepted it or registered it as a candidate for review,
    what it predicts from which table, and its numbers. `--json` has the ARNs and everything recorded."""

    def number(value):
        return "-" if value is None else f"{value:.4f}"

    lines = [
        f"{'version':>7}  {'status':<22} {'kind':<9} {'problem':<14} {'target':<14} {'metric':<17} {'val':>7}  "
        f"{'base':>7}  {'test':>7}  {'gap':>7}  {'round':>5}  {'created':<16}  data"
    ]
    for r in rows:
        kind = "accepted" if r["accepted"] == "true" else "candidate"
        data = r["data"] or "-"
        lines.append(
            f"{r['version'] or '-':>7}  {r['status']:<22} {kind:<9} {r['problem_type'] or '-':<14} "
            f"{r['target'] or '-':<14} {r['quality_metric'] or '-':<17} {number(r['val_quality']):>7}  "
            f"{number(r['baseline_quality']):>7}  {number(r['test_quality']):>7}  {number(r['gap']):>7}  "
            f"{r['round'] or '-':>5}  {r['created'][:16]:<16}  {data}"
        )
    targets = sorted({r["target"] for r in rows if r["target"]})
    if len(targets) > 1:
        lines.append(
            f"note: this group holds models of {len(targets)} targets ({', '.join(targets)}): give each table its own "
            "group (--param ModelPackageGroupName=NAME, then --group NAME here; docs/registry.md)"
        )
    if any(r["accepted"] != "true" for r in rows):
        lines.append("candidate: registered for review when no round was accepted; approving one needs --force --note")
    return "\n".join(lines)


def find(sagemaker, group: str, ref: str) -> dict:
    """`ref` is a package ARN, a version number of `group`, or `latest`."""
    if ref.startswith("arn:"):  # one package: describe it, not the whole group
        try:
            package = sagemaker.describe_model_package(ModelPackageName=ref)
        except sagemaker.exceptions.ClientError:
            package = {}
        if package.get("ModelPackageGroupName") != group:
            raise PackageNotFound(f"model package {ref} not found in group {group}")
        return _row(package)
    rows = list_packages(sagemaker, group)
    if ref == "latest":
        if not rows:
            raise PackageNotFound(f"model package group {group} has no packages")
        return rows[0]
    for row in rows:
        if ref in (row["arn"], str(row["version"])):
            return row
    raise PackageNotFound(f"model package {ref} not found in group {group}")


def policy_violations(row: dict, max_gap: float | None = None) -> list[str]:
    """Why the package breaks its recorded policy; a number that was not recorded is a violation too."""
    names = {
        "gap": "generalization gap",
        "max_gap": "maximum gap",
        "val_quality": "validation quality",
        "baseline_quality": "baseline quality",
        "min_lift": "minimum lift",
        "min_quality": "minimum quality",
    }
    absent = [text for key, text in names.items() if row[key] is None]
    if absent:
        return [f"it has no recorded {', '.join(absent)}"]
    problems = []
    recorded = row["max_gap"] if row.get("gap_limit") is None else max(row["max_gap"], row["gap_limit"])
    limit = recorded if max_gap is None else min(max_gap, recorded)  # --max-gap only tightens
    if row["accepted"] != "true":
        problems.append("the pipeline did not accept it: it was registered as the best candidate, for review")
    if gap_exceeds(row["gap"], row["gap_se"], limit):
        problems.append(
            f"its generalization gap {row['gap']:.4f} is above the maximum {limit:g} by more than its standard "
            f"error {row['gap_se']:.4f}"
        )
    # whatever an execution was started with, a model no better than the trivial baseline is never approvable
    floor = max(row["baseline_quality"] + max(row["min_lift"], 0.0), row["min_quality"])
    if row["val_quality"] <= row["baseline_quality"]:
        problems.append(
            f"its validation {row['quality_metric']} {row['val_quality']:.4f} is no better than the baseline's "
            f"{row['baseline_quality']:.4f}"
        )
    elif row["val_quality"] < floor:
        problems.append(
            f"its validation {row['quality_metric']} {row['val_quality']:.4f} is under {floor:.4f} "
            f"(baseline {row['baseline_quality']:.4f} + lift {row['min_lift']:g}, or minimum {row['min_quality']:g})"
        )
    return problems


def set_status(
    sagemaker,
    group: str,
    ref: str,
    status: str,
    note: str = "",
    force: bool = False,
    max_gap: float | None = None,
    echo: Callable = print,
) -> dict:
    if max_gap is not None and not math.isfinite(max_gap):
        raise RegistryError(f"--max-gap must be a finite number, got {max_gap}")
    row = find(sagemaker, group, ref)
    if status == "Approved" and force and not note:
        raise RegistryError(
            f"approving version {row['version']} with --force needs a --note saying why (stored as the approval "
            "description)"
        )
    if status == "Rejected" and row["status"] == "Approved" and not note:
        raise RegistryError(
            f"version {row['version']} is Approved: rejecting it un-approves it, and needs a --note saying why"
        )
    if status == "Approved":
        # the policy first, even for a package that is approved already: the answer must not depend on history
        problems = policy_violations(row, max_gap)
        if row["status"] == "Rejected" and not (force and note):
            raise ApprovalRefused(
                f"refusing to approve version {row['version']}: it was rejected; approving it needs --force and a "
                "--note saying why"
            )
        if problems and not force:
            raise ApprovalRefused(
                f"refusing to approve version {row['version']}: {'; '.join(problems)} (--force overrides)"
            )
        if problems and row["status"] != status:
            echo(f"approving version {row['version']} despite the policy (--force): {'; '.join(problems)}")
    if row["status"] == status:
        echo(f"version {row['version']} is already {status}")
        return row
    if status == "Approved":
        # a reject (or any change) since the package was read above wins: the decision was made on what was read.
        # The model registry has no conditional update; this narrows the window to one request.
        now = _row(sagemaker.describe_model_package(ModelPackageName=row["arn"]))
        if (now["status"], now["modified"], now["metadata"]) != (row["status"], row["modified"], row["metadata"]):
            raise ApprovalRefused(
                f"refusing to approve version {row['version']}: it changed while this command ran (now "
                f"{now['status']}, modified at {now['modified'] or 'an unknown time'}): look at it again, then run the "
                "command again"
            )
    # The metadata is sent again unchanged: AWS keeps it anyway, moto would drop it on update.
    request = {
        "ModelPackageArn": row["arn"],
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": row["metadata"],
    }
    if note:
        request["ApprovalDescription"] = note
    sagemaker.update_model_package(**request)
    echo(f"version {row['version']}: {row['status']} -> {status} ({row['arn']})")
    return {**row, "status": status}
