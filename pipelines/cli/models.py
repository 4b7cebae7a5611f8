"""`regula models` (list, approve, reject in the registry; the work is in models/registry.py) and `regula predict`
(score a table with a run folder's or the registry's model, here; the work is in models/predict.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.cli.shared import client, notice, print_json
from pipelines.errors import NotFound
from steps.defaults import MODEL_PACKAGE_GROUP


def cmd_models(args: argparse.Namespace) -> int:
    from pipelines.models import registry

    sagemaker = client(args, "sagemaker")
    if args.action == "list":
        rows = registry.list_packages(sagemaker, args.group)
        print_json(rows) if args.json else print(registry.table(rows))
        return 0
    status = "Approved" if args.action == "approve" else "Rejected"
    registry.set_status(
        sagemaker, args.group, args.package, status, note=args.note, force=args.force, max_gap=args.max_gap
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import tempfile

    from pipelines.models import predict

    if not args.data.is_file() and not args.data.is_dir():  # a folder: of images
        raise NotFound(f"data file {args.data} does not exist")
    with tempfile.TemporaryDirectory(prefix="regula-predict-") as tmp:
        workdir = Path(tmp)
        if Path(args.model).is_dir():
            archive, expected = predict.from_run_folder(Path(args.model))
        else:
            archive, expected = predict.from_registry(
                client(args, "sagemaker"),
                client(args, "s3"),
                args.group,
                args.model,
                workdir,
                echo=notice,
                allow_rejected=args.allow_rejected,
            )
        model_dir = predict.unpack(archive, expected, workdir / "model")
        rows, text = predict.predict(model_dir, args.data, args.out, skip_bad_rows=args.skip_bad_rows, echo=notice)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"scored {rows} rows of {args.data} -> {args.out}", file=sys.stderr)
    return 0


PREDICT_DESCRIPTION = """Score a raw table with exactly the code and weights a model was registered with.

How a class is chosen (printed with every batch, and in JSON output as decision_rule):
  ClassWeight none: the class with the highest probability (two classes: the second when its probability > 0.5).
  ClassWeight balanced (the default where the quality metric is balanced accuracy or macro F1): the class with the
  highest probability divided by its share of the training rows. With two classes: the second class when its
  probability > its training share, e.g. 'yes' when probability_yes > 0.21 on a table with 21% 'yes': a row can be
  'yes' with probability_yes 0.3. That is the rule that maximizes balanced accuracy; the probabilities stay calibrated.
Categories the model never saw are warned about, with counts per column; so is a text cut to the model's limit
(10,000 characters a cell: docs/text.md), with its rows (in JSON output also as `warnings`). Rows are named by their
line in a CSV file (the header is line 1), by their number from 1 in other files."""


def add_parsers(commands) -> None:
    models = commands.add_parser("models", help="the model registry: list, approve, reject")
    model_actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "packages of the group, newest first"),
        ("approve", "approve a package"),
        ("reject", "reject a package"),
    ):
        sub = model_actions.add_parser(action, help=text)
        sub.add_argument(
            "--group", default=MODEL_PACKAGE_GROUP, help=f"model package group (default: {MODEL_PACKAGE_GROUP})"
        )
        sub.add_argument("--region")
        if action == "list":
            sub.add_argument("--json", action="store_true")
        else:
            sub.add_argument("package", help="package ARN, version number, or latest")
            sub.add_argument(
                "--note",
                default="",
                help="why: stored as the approval description; required with --force, and to reject an Approved "
                "package or approve a Rejected one",
            )
        if action == "approve":
            sub.add_argument(
                "--force", action="store_true", help="approve even if the package breaks its policy (needs --note)"
            )
            sub.add_argument("--max-gap", type=float, help="policy maximum gap (default: the one recorded)")
        sub.set_defaults(func=cmd_models, force=False, max_gap=None, note="", json=False)

    predict = commands.add_parser(
        "predict",
        help="score a raw table with a registered model, locally",
        description=PREDICT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("--model", required=True, help="run folder, model package ARN, version number, or latest")
    predict.add_argument(
        "--data",
        required=True,
        type=Path,
        help="rows to score: .csv with a header, .json, .jsonl, .parquet; or an image file, or a folder of them",
    )
    predict.add_argument("--out", type=Path, help="write here (.csv or .json) instead of standard output")
    predict.add_argument(
        "--group", default=MODEL_PACKAGE_GROUP, help=f"model package group (default: {MODEL_PACKAGE_GROUP})"
    )
    predict.add_argument("--allow-rejected", action="store_true", help="run a Rejected package's code all the same")
    predict.add_argument("--region")
    predict.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="score the rows the model accepts and list the others (by file line) instead of refusing the batch",
    )
    predict.set_defaults(func=cmd_predict)
