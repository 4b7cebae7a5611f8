"""docs/performance.md, rendered from benchmarks/results/*.json: the only place the benchmarks' figures are written.

    python benchmarks/report.py            write docs/performance.md
    python benchmarks/report.py --check    exit 1 unless docs/performance.md is what the results files render

Every section names its results file and the run that wrote it (benchmarks/results_file.py: commit, command line,
cores and load, date). A file without a run record predates the record or was edited by hand: it is rendered under
"legacy, unverified", with what is known to be wrong with it, until its benchmark is run again.
tests/test_performance_docs.py fails when docs/performance.md and the results files disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402

REPO = results_file.REPO
RESULTS = results_file.RESULTS
DOC = REPO / "docs" / "performance.md"


def f(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return lines + ["| " + " | ".join(f(cell) for cell in row) + " |" for row in rows]


def run_line(name: str, results: dict) -> list[str]:
    if not results_file.is_recorded(results):
        return ["**Legacy, unverified**: no run record. Figures below are as the file holds them."]
    run = results["run"]
    machine = run["machine"]
    load = machine.get("load_at_start") or ["?"]
    changes = ", with uncommitted changes" if run["worktree_changes"] else ""
    return [
        f"Run `{run['command']}` at commit `{run['commit'][:12]}`{changes}, {run['started']} to {run['finished']}, "
        f"{machine['cpus']} cores, load {load[0]} at the start and {machine['load_at_end'][0]} at the end."
    ]


# -- one renderer per results file -----------------------------------------------------------------------------------


def overheads(r: dict) -> list[str]:
    runner, emission, cli = r["runner"], r["cloudwatch_emission"], r["cli_help"]
    return table(
        ["what", "measured", "target"],
        [
            ["`regula run --local` on the bundled data, whole run (s)", runner["pipeline_seconds"], "-"],
            ["local runner's own cost per job step (s)", runner["runner_overhead_per_step_seconds"], "-"],
            [
                "training loop with CloudWatch emission on / off",
                emission["loop_ratio"],
                f"<= {emission['target_ratio']}",
            ],
            ["training process with emission on / off", emission["process_ratio"], "-"],
            [f"`regula --help` start-up, median of {cli['repeats']} (s)", cli["median_seconds"], "<= 0.5"],
        ],
    )


def throughput(r: dict) -> list[str]:
    return table(
        ["device", "rows", "epochs", "bare PyTorch samples/s", "train.py samples/s", "ratio", "target"],
        [
            [
                r["device"],
                r["rows"],
                r["epochs"],
                r["bare_samples_per_second"],
                r["regula_samples_per_second"],
                r["ratio"],
                f">= {r['target_ratio']}",
            ]
        ],
    )


def checkpoints(r: dict) -> list[str]:
    rows = [
        [
            t["table"],
            t["repeats"],
            f(t["off"]["epoch_seconds"], 4),
            f(t["default"]["epoch_seconds"], 4),
            f(t["every epoch"]["epoch_seconds"], 4),
            f(t["checkpoint_write_seconds"], 4),
            f(t["checkpoint_bytes"] / 2**20, 2),
            f"{100 * t['default_share_long_run']:.4f}%",
        ]
        for t in r["results"]
    ]
    header = ["table", "repeats", "s/epoch, off", "default", "every epoch", "one write (s)", "MB", "share, default"]
    return table(header, rows) + ["", f"Default checkpoint interval: {r['checkpoint_seconds']} s."]


def concurrent_runs(r: dict) -> list[str]:
    rows = [[name, v["alone_s"], v["two_at_once_s"], v["ratio"]] for name, v in r["results"].items()]
    return table(["threads", "one run alone (s)", "two at once (s)", "ratio (target <= 1.3)"], rows)


def large_table(r: dict) -> list[str]:
    steps = r["steps"]
    lines = table(
        ["step", "seconds", "CPU seconds", "peak memory (MB)"],
        [[name, s["seconds"], s["cpu_seconds"], s["peak_rss_mb"]] for name, s in steps.items()],
    )
    regula, strength = r["regula"], r["regula"]["regularization"]
    lines += [
        "",
        f"{r['rows']:,} rows ({r['format']}, {r['input_mb']} MB); Regula at dropout {f(strength['dropout'])}, L1 "
        f"{strength['l1']:g}, L2 {f(strength['l2'])}: test accuracy {f(regula['test_accuracy'], 4)}, validation "
        f"{f(regula['validation_accuracy'], 4)} ({regula['epochs']} epochs, best {regula['best_epoch']}, decision "
        f"{regula['decision']}); the Bayes rate {r['bayes_accuracy']}. Peak memory target {r['target_peak_rss_mb']} "
        f"MB ({'met' if r['within_target'] else 'not met'}), training target {r['target_train_seconds']} s "
        f"({'met' if r['train_within_target'] else 'not met'}).",
    ]
    if r.get("hgb"):
        h = r["hgb"]
        tried = ", ".join(
            f"{rate}: {f(accuracy, 4)} in {h['fit_seconds'][rate]} s"
            for rate, accuracy in h["validation_accuracy"].items()
        )
        lines += [
            "",
            f"HistGradientBoosting: test accuracy {f(h['test_accuracy'], 4)} at learning rate "
            f"{h['chosen']['learning_rate']} ({h['chosen']['max_iter']} iterations), chosen on validation accuracy "
            f"({tried}); {h['model']}; {h['input']}.",
        ]
    return lines


def baseline(result: dict, metric: str) -> str:
    """A baseline's test metric, with what it chose on validation where it chose (the tuned baselines)."""
    chosen = ", ".join(f"{k} {v:g}" for k, v in result.get("chosen", {}).items())
    return f(result.get(metric)) + (f" ({chosen})" if chosen else "")


def points(value) -> str:
    return "-" if value is None else f"{value:+.2f}"


def suite_line(partition: str, line: dict) -> str:
    """One summary line of the real-tables suite (real_tables.summary): misses count as failures."""
    worst = (
        f"{points(line['worst_points'])} ({line['worst_table']})"
        if line["worst_points"] is not None
        else f"a miss ({line['worst_table']})"
    )
    misses = f"; no registered model (a miss): {', '.join(line['misses'])}" if line["misses"] else ""
    losses = [t for t in line["losses"] if t not in line["misses"]]
    below = f"; more than 1 point below: {', '.join(losses)}" if losses else ""
    return (
        f"{partition} tables: {line['within']} of {line['tables']} within 1 point ({100 * line['share_within']:.0f}%, "
        f"target 90%), median difference {points(line['median_points'])} points (target >= 0), worst {worst} "
        f"(target >= -3){misses}{below}; target {'met' if line['target_met'] else 'not met'}."
    )


def real_tables(r: dict, before: dict | None = None) -> list[str]:
    """The suite: per table, Regula's test metric against the better tuned baseline, in points (a point is the
    tolerance: 0.01 of (balanced) accuracy, 0.02 of R2); the summary lines per partition; `before`, an earlier run's
    file, beside it."""
    earlier = {}
    if before is not None:
        for t in before["tables"]:
            earlier[t["table"]] = {k: v["verdict"] for k, v in t["settings"].items()}
    lines = []
    for setting in r.get("settings", ["balanced"]):
        rows = []
        for t in r["tables"]:
            s = t["settings"].get(setting)
            if s is None:
                continue
            v, regula = s["verdict"], s["regula"]
            kept = regula["outcome"].removeprefix("registered r") if regula.get("registered") else "-"
            rows.append(
                [
                    t["table"],
                    t["partition"],
                    f"{t['rows']}" + (f" of {t['rows_before_cap']}" if t["rows_before_cap"] != t["rows"] else ""),
                    t["problem_type"] if t["problem_type"] == "regression" else f"{t['classes']} classes",
                    v["metric"],
                    f(v["value"]),
                    f"{f(v['best'])} ({BASELINE_NAMES.get(v['best_baseline'], v['best_baseline'])})",
                    f"{v['difference']:+.3f}" if v["difference"] is not None else "-",
                    points(v["points"]),
                    f"{len(regula['rounds'])} (kept {kept})" if regula.get("rounds") else "-",
                    v["label"] if not regula.get("registered") else regula["outcome"],
                ]
                + ([points(earlier.get(t["table"], {}).get(setting, {}).get("points"))] if before else [])
            )
        header = ["table", "partition", "rows", "problem", "metric", "Regula test", "best baseline", "difference",
                  "points", "rounds (kept)", "decision"] + (["points before"] if before else [])  # fmt: skip
        lines += [f"**{setting} setting**:", ""] + table(header, rows) + [""]
        for partition in ("report", "tuning"):
            line = r["summary"][setting][partition] if "summary" in r else None
            if line and line["tables"]:
                lines += [suite_line(partition.capitalize(), line), ""]
            old = (before or {}).get("summary", {}).get(setting, {}).get(partition)
            if old and old["tables"]:
                lines += [suite_line(f"Before (commit {before['run']['commit'][:12]}): {partition}", old), ""]
    if r.get("complete") is False:
        lines += ["The run was stopped before its last table: these are the tables it finished.", ""]
    return lines[:-1]


BASELINE_NAMES = {"linear": "LogReg/Ridge", "hgb": "HGB"}


def ladder_vs_optuna(r: dict) -> list[str]:
    rows, hits = [], 0
    for t in r["results"]:
        regula, search = t["regula"], t["optuna"]
        accepted = regula.get("accepted", regula["decision"] == "register")
        points = 100 * (regula["test"] - search["test"]) if accepted and regula.get("test") is not None else None
        hit = points is not None and points >= -0.5
        hits += hit
        rows.append(
            [
                t["table"],
                regula["metric"],
                regula["decision"],
                regula["rounds"],
                regula["epochs"],
                f(regula["test"], 4) if accepted else "no accepted model",
                search["epochs"],
                f(search["test"], 4),
                t["epoch_ratio"],
                f"{points:+.2f}" if points is not None else "miss",
            ]
        )
    header = ["table", "metric", "ladder ends", "rounds", "epochs", "test", "Optuna epochs", "Optuna test",
              "epochs ratio", "points"]  # fmt: skip
    return (
        table(header, rows)
        + [
            "",
            f"Hits (an accepted model within 0.5 point of Optuna, or better): {hits} of {len(rows)}; target 80%."
            + (" The run was not complete." if r.get("complete") is False else ""),
        ]
        + epochs_line(r)
    )


def epochs_line(r: dict) -> list[str]:
    summary = r.get("summary", {})
    if "epoch_ratio_total" not in summary:
        return []
    return [
        "",
        f"Epochs: the ladder trained {summary['epoch_ratio_total']:.3f}x Optuna's epochs over these tables "
        f"(at most {summary['epoch_ratio_max']:.3f}x on one; target <= 0.2x).",
    ]


def overfitting_condition(r: dict) -> list[str]:
    """benchmarks/overfitting_condition.py: per run (MaxGap, StopOnOverfitting) the ladder's decisions, and per
    training job the epochs in which the overfitting condition held."""
    runs = [
        [
            f(run["max_gap"], 2),
            run["stop_on_overfitting"],
            run["decision"],
            ", ".join(run["round_decisions"]),
            f(run["registered_validation_quality"], 4),
            f(run["registered_test_quality"], 4),
            f(run["seconds"], 1),
        ]
        for run in r["runs"]
    ]
    jobs = [
        [
            f(run["max_gap"], 2),
            run["stop_on_overfitting"],
            job["round"],
            job["epochs"],
            job["best_epoch"],
            job["condition_epochs"],
            job["first_epoch"],
            job["gap_part_epochs"],
            job["rise_part_epochs"],
            job["old_and_epochs"],
            job["stopped_for_overfitting"],
        ]
        for run in r["runs"]
        for job in run["jobs"]
    ]
    held = sum(job[5] > 0 for job in jobs)
    header = ["MaxGap", "StopOnOverfitting", "ends", "rounds' decisions", "registered validation", "its test",
              "seconds"]  # fmt: skip
    job_header = ["MaxGap", "StopOnOverfitting", "round", "epochs", "best epoch", "condition epochs", "first epoch",
                  "gap above MaxGap", "loss rising 3 epochs", "both (the old AND)",
                  "stopped for overfitting"]  # fmt: skip
    return (
        table(header, runs)
        + ["", f"The condition held in {held} of {len(jobs)} training jobs:", ""]
        + table(job_header, jobs)
    )


def serve_load(r: dict) -> list[str]:
    """benchmarks/serve_load.py: the model server on loopback at 1, 8 and 64 clients."""
    names = {"stdlib-threading": "standard library (before)"}
    rows = []
    for name, server in r["servers"].items():
        label = names.get(name, f"{name}, {server['workers']} workers" if server.get("workers") else name)
        for x in server["loads"]:
            kinds = f" ({', '.join(x['failure_kinds'])})" if x["failure_kinds"] else ""
            rows.append(
                [
                    label,
                    x["clients"],
                    "keep-alive" if x["keep_alive"] else "one per request",
                    f(x["requests_per_second"], 1),
                    f(x["p50_ms"], 0),
                    f(x["p99_ms"], 0),
                    f"{x['failures']} of {x['requests']}{kinds}",
                    f(x["server_cpu_ms_per_request"], 1),
                ]
            )
    header = ["server", "clients", "connections", "requests/s", "p50 ms", "p99 ms", "lost", "server CPU ms / request"]
    baseline = r.get("baseline")
    baseline = f" The standard-library server is `steps/serve.py` at commit `{baseline}`." if baseline else ""
    return table(header, rows) + [
        "",
        f"Body: {r['body']}.{baseline} Server CPU time: its process tree's, from /proc. Every figure but the "
        "connections lost depends on the machine's load (the run record): compare runs at similar load only.",
    ]


def regularizer_effect(r: dict) -> list[str]:
    rows = []
    for name, t in r["results"].items():
        rows.append(
            [name, "base", "-", t["base"]["gap"], t["base"]["validation"], t["base"]["test"], t["base"]["epochs"]]
        )
        for knob in ("dropout", "l1", "l2"):
            for v in t.get(knob, []):
                rows.append([name, knob, f"{v['value']:g}", v["gap"], v["validation"], v["test"], v["epochs"]])
    return table(["table", "knob", "value", "gap", "validation", "test", "epochs"], rows)


def train_options(r: dict) -> list[str]:
    results = r["results"].values()
    mae = any("validation_mae_change" in t for t in results)  # regression runs: the original scale's MAE
    steps = any("steps" in run for t in results for runs in t["runs"].values() for run in runs)  # newer runs

    def mean_of(t: dict, variant: str, key: str) -> str:
        values = [run[key] for run in t["runs"][variant] if key in run]
        return f(sum(values) / len(values), 4 if key == "train" else 0) if values else "-"

    rows = []
    for name, t in r["results"].items():
        for variant in t["mean_test"]:
            validation = t.get("mean_validation", {}).get(variant)
            spread = t.get("spread_validation", {}).get(variant)
            row = [
                name,
                variant,
                f(validation, 4),
                f(spread, 4),
                f"{t['validation_points'][variant]:+.2f}" if "validation_points" in t else "-",
                f(t["mean_test"][variant], 4),
                f"{t['points'][variant]:+.2f}",
                f(t["mean_epochs"][variant], 0),
            ]
            if steps:
                row[3:3] = [mean_of(t, variant, "train")]
                row.append(mean_of(t, variant, "steps"))
            if mae:
                change = t.get("validation_mae_change", {}).get(variant)
                spread_mae = t.get("validation_mae_change_spread", {}).get(variant)
                row.append(f"{change:+.1f}% (sd {spread_mae:.1f})" if change is not None else "-")
            rows.append(row)
    seeds = r.get("split_seeds")
    how = f"split seeds {seeds}" if seeds else f"{r['seeds']} initialisation seeds on one split"
    header = ["table", "variant", "validation", "spread (sd)", "points (val)", "test", "points (test)", "epochs"]
    header[3:3] = ["train"] if steps else []
    header += (["steps"] if steps else []) + (["MAE (val) against the first"] if mae else [])
    lines = table(header, rows) + ["", f"Means over {how}; points against the first variant."]
    if "decision" in r:
        decision = r["decision"]
        each = "; ".join(
            f"{name}: {v['mean_validation_points']:+.2f} points on validation over {decision['tables']} tables, "
            f"ahead on {v['ahead']}, behind on {v['behind']} (beyond the spread across splits)"
            for name, v in decision["variants"].items()
        )
        lines += [
            "",
            f"The rule, on validation only, picks **{decision['keep']}** ({each}); what was adopted, and why: "
            "benchmarks/README.md.",
        ]
    return lines


def forecasting(r: dict) -> list[str]:
    rows = []
    for t in r["series"]:
        regula = t.get("test_mae")
        best = min(v for v in (regula, t["hgb_test_mae"], t["naive_test_mae"]) if v is not None)

        def mark(value, best=best):
            return "-" if value is None else (f"**{value:.4g}**" if value == best else f"{value:.4g}")

        rows.append(
            [
                t["series"],
                t["rows"],
                t["series_count"],
                t["frequency"],
                t["season"],
                t["test_rows"],
                t["decision"] + (f" (round {t['round']} of {t['rounds']})" if "round" in t else ""),
                mark(regula),
                mark(t["hgb_test_mae"]),
                mark(t["naive_test_mae"]),
                f(t.get("validation_mase"), 2),
                f(t.get("test_mase"), 2),
                f(t.get("test_r2_levels"), 3),
            ]
        )
    header = ["series", "rows", "series count", "frequency", "season", "test rows", "decision"]
    header += ["Regula", "HGB", "naive", "MASE (val)", "MASE (test)", "R2 levels (test)"]
    s = r["summary"]
    return table(header, rows) + [
        "",
        f"Test MAE in the series' units. Registered: {s.get('registered', '-')} of {s['series']}; at or below HGB: "
        f"{s['at_or_below_hgb']}; below the seasonal naive forecast: {s['below_naive']} (a run that registers nothing "
        "is a miss in both). MASE: MAE over the seasonal naive forecast's on the same rows.",
    ]


def forecasting_regularizers(r: dict) -> list[str]:
    """benchmarks/forecasting.py --regularizers: one round per setting, each raising one knob from the base."""
    rows = [
        [x["series"], x["setting"], f(x["gap"]), f"{x['validation_mae']:.4g}", f(x["validation_r2"]),
         f"{x['test_mae']:.4g}", x["best_epoch"]]
        for x in r["rows"]
    ]  # fmt: skip
    header = ["series", "setting", "relative gap", "validation MAE", "validation R2", "test MAE", "best epoch"]
    return table(header, rows)


def forecasting_variants(r: dict) -> list[str]:
    by: dict = {}
    for row in r["rows"]:
        by.setdefault((row["series"], row["setting"]), []).append(row)

    def mean(v: list[dict], key: str) -> str:
        return f(sum(x[key] for x in v) / len(v), 3)

    rows = [[name, setting, mean(v, "validation_mase"), mean(v, "test_mase")] for (name, setting), v in by.items()]
    decision = r["decision"]
    each = "; ".join(
        f"{name}: validation MAE x{f(v['validation_mae_vs_mlp'], 3)} of the MLP's, ahead on {v['ahead']}, behind on "
        f"{v['behind']} (test x{f(v['test_mae_vs_mlp'], 3)})"
        for name, v in decision["variants"].items()
        if name != "MLP"
    )
    return table(["series", "model", "MASE (val)", "MASE (test)"], rows) + [
        "",
        f"Means over init seeds {r['seeds']}, one round at the base regularization each.",
        f"Decision, on validation only: keep **{decision['kept']}** ({each}).",
    ]


def images(r: dict) -> list[str]:
    rows = []
    for name, t in r["results"].items():
        c, rows_ = t["cnn"], t["rows"]
        split = f"{rows_['train']}/{rows_['validation']}/{rows_['test']}"
        rows.append([
            f"{name} ({t['images']:,}, {t['size']}x{t['size']}, {split})", f(c["test_accuracy"], 4),
            f"{c['epochs']} ({c['best_epoch']})", c["train_images_per_second"],
            f"{c['train_peak_mb']} / {c['preprocess_peak_mb']}", f(t["logistic_regression"]["test_accuracy"], 4),
            f(t["hist_gradient_boosting"]["test_accuracy"], 4),
        ])  # fmt: skip
    header = ["set (images, size, train/val/test)", "CNN test accuracy", "epochs (best)", "train images/s (CPU)",
              "peak MB train / preprocess", "LogisticRegression", "HistGradientBoosting"]  # fmt: skip
    lines = table(header, rows)
    if any("variants" in t for t in r["results"].values()):
        variant_rows = [
            [name, v, f(m["gap"], 4), f(m["validation_accuracy"], 4), f(m["test_accuracy"], 4), m["epochs"]]
            for name, t in r["results"].items()
            for v, m in {"dropout 0.1": t["cnn"], **t.get("variants", {})}.items()
        ]
        lines += ["", "One split (seed 42), one run per cell:", ""]
        lines += table(["set", "variant", "gap", "validation accuracy", "test accuracy", "epochs"], variant_rows)
    return lines


def image_options(r: dict) -> list[str]:
    rows = []
    for name, t in r["results"].items():
        for v in t["mean_validation"]:
            rows.append([
                name, v, f(t["mean_validation"][v], 4), f(t["spread_validation"][v], 4),
                f"{t['validation_points'][v]:+.2f} ± {t['validation_points_spread'][v]:.2f}", f(t["mean_gap"][v], 4),
                f(t["mean_test"][v], 4), f(t["mean_epochs"][v], 0),
            ])  # fmt: skip
    header = ["set", "variant", "validation", "spread (sd)", "points (val) ± sd", "gap", "test", "epochs"]
    decision = r["decision"]
    each = "; ".join(
        f"{name}: {v['mean_validation_points']:+.2f} points on validation over {decision['tables']} sets, ahead on "
        f"{v['ahead']}, behind on {v['behind']} (beyond the spread across splits)"
        for name, v in decision["variants"].items()
    )
    missing = [name for name in r.get("sets", []) if name not in r["results"]]
    stopped = f" Not run (the run was stopped before them): {', '.join(missing)}." if missing else ""
    return table(header, rows) + [
        "",
        f"Balanced accuracy; means over split seeds {r['split_seeds']}, at most {r['max_epochs']} epochs; points "
        f"against the first variant, today's default. Decision, on validation only: keep **{decision['keep']}** "
        f"({each}).{stopped}",
    ]


def image_scale(r: dict) -> list[str]:
    rows = []
    for x in r["results"]:
        per_image = f"{1000 * x['cpu_seconds'] / x['images']:.2f}"
        megabytes = [f"{x[k] / 2**20:.1f}" for k in ("input_bytes", "output_bytes")]
        rows.append([f"{x['images']:,}", f(x["preprocess_seconds"], 1), f(x["cpu_seconds"], 1), per_image,
                     x["peak_mb"], *megabytes])  # fmt: skip
    first, last = r["results"][0], r["results"][-1]
    marginal = (last["cpu_seconds"] - first["cpu_seconds"]) / max(last["images"] - first["images"], 1)
    header = ["images", "seconds", "CPU seconds", "CPU ms per image", "peak MB", "input MB", "splits MB"]
    return table(header, rows) + [
        "",
        f"{r['image_size']}x{r['image_size']} grayscale PNGs. Between the smallest and the largest count: "
        f"{1000 * marginal:.2f} CPU ms per added image; peak memory {first['peak_mb']} -> {last['peak_mb']} MB.",
    ]


def borderline_rule(r: dict) -> list[str]:
    """ladder_rules.py: where a round was borderline, the registered round's test quality against that round's."""
    s = r["summary"]
    rows = [
        [c["table"], c["split_seed"], f"r{c['borderline_round']}: {f(c['borderline_test'], 4)}",
         "miss" if c["registered_test"] is None else f"r{c['registered_round']}: {f(c['registered_test'], 4)}",
         points(c["points"]), c["extra_rounds"], f(c["extra_seconds"], 1)]
        for c in s["counterfactuals"]
    ]  # fmt: skip
    header = ["table", "split seed", "borderline round: test", "registered: test", "points", "extra rounds", "extra s"]
    lines = table(header, rows) if rows else ["No round was borderline."]
    lines += [
        "",
        f"Tables {', '.join(r['tables'])}; split seeds {r['split_seeds']}: {s['runs']} runs, borderline in "
        f"{s['fired']} ({100 * (s['share_fired'] or 0):.0f}%); mean {points(s['mean_points'])} points on test "
        f"(spread {f(s['spread_points'], 2)}), ahead on {s['ahead']}, behind on {s['behind']} beyond the tolerance; "
        f"{s['extra_rounds']} extra rounds, {s['extra_seconds']} s of {s['run_seconds']} s.",
    ]
    if r.get("decision"):
        lines += ["", f"Decision: **{r['decision']['keep']}** ({r['decision']['why']})."]
    return lines


def ladder_rounds(r: dict) -> list[str]:
    """ladder_rounds.py: where a run failed at the default's last round, what more rounds did."""
    s = r["summary"]
    rows = [
        [c["table"], c["split_seed"], f"r{c['candidate_round']}: {f(c['candidate_test'], 4)}",
         "miss" if c["registered_test"] is None else f"r{c['registered_round']}: {f(c['registered_test'], 4)}",
         points(c["test_points"]), points(c["validation_points"]), f(c["extra_seconds"], 1)]
        for c in s["comparisons"]
    ]  # fmt: skip
    header = ["table", "split seed", "candidate: test", "registered: test", "test points", "validation", "extra s"]
    lines = table(header, rows) if rows else [f"No run failed at round {r['default_rounds']}."]
    lines += [
        "",
        f"Tables {', '.join(r['tables'])}; split seeds {r['split_seeds']}: {s['runs']} runs with {r['more']} rounds, "
        f"{s['failed_at_default']} failed at the default's round {r['default_rounds']}, {s['rescued']} of them "
        f"registered a later round; {s['extra_seconds']} s of extra rounds of {s['run_seconds']} s.",
    ]
    if r.get("decision"):
        lines += ["", f"Decision: **{r['decision']['rounds']} rounds** ({r['decision']['why']})."]
    return lines


def refit(r: dict) -> list[str]:
    rows = []
    for name, entry in r["tables"].items():
        runs = entry["runs"]
        rows.append(
            [name, " / ".join(f(x["first"]["test"], 4) for x in runs),
             " / ".join(f(x["refit"]["test"], 4) for x in runs), f"{entry['mean_test_points']:+.2f}",
             f(entry["spread"], 2),
             " / ".join(str(x["first"]["best_epoch"]) for x in runs)]
        )  # fmt: skip
    s = r["summary"]
    header = ["table", "round 1 test", "refit test", "points (mean)", "spread", "epochs refit"]
    return [f"Split seeds {r['split_seeds']}, one init seed. Over {s['tables']} tables: {s['mean_test_points']:+.2f} "
            f"points on average, ahead on {s['ahead']} and behind on {s['behind']} by more than the spread.", "",
            *table(header, rows)]  # fmt: skip


RENDERERS: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "refit_tuning.json": ("Round 1 refit on train + validation, tuning tables' test (`refit.py`)", refit),
    "ladder_rounds.json": ("The ladder's rounds: the default against more (`ladder_rounds.py`)", ladder_rounds),
    "real_tables_rounds5.json": (
        "Real tables against scikit-learn, the ladder at 5 rounds (`real_tables.py`)",
        real_tables,
    ),
    "forecasting.json": ("Forecasting against HGB and the seasonal naive forecast (`forecasting.py`)", forecasting),
    "forecasting_before.json": ("Forecasting with one MLP, before five averaged ones (`forecasting.py`)", forecasting),
    "forecasting_regularizers.json": (
        "Forecasting: one regularizer at a time (`forecasting.py --regularizers`)",
        forecasting_regularizers,
    ),
    "forecasting_variants.json": (
        "Forecasting models: MLP, GRU, Huber loss (`forecasting.py --variants`)",
        forecasting_variants,
    ),
    "forecasting_ensemble.json": (
        "Forecasting models: the MLP against five averaged (`forecasting.py --variants --variant ...`)",
        forecasting_variants,
    ),
    "images.json": ("Images: the CNN against raw-pixel baselines (`images.py`)", images),
    "images_mnist5k.json": ("Images: MNIST 5k (`images.py`)", images),
    "image_options.json": (
        "Images: base dropout and augmentation, over split seeds (`image_options.py`)",
        image_options,
    ),
    "image_scale.json": ("Images: preprocessing against the number of images (`image_scale.py`)", image_scale),
    "overheads.json": ("Local runner, CloudWatch emission and CLI start-up (`overheads.py`)", overheads),
    "concurrent_runs.json": ("Two local runs at once (`concurrent_runs.py`)", concurrent_runs),
    "checkpoints.json": ("Training checkpoints (`checkpoints.py`)", checkpoints),
    "throughput.json": ("Training throughput against a bare PyTorch loop (`gpu_throughput.py`)", throughput),
    "large_table.json": ("A 2,000,000-row table (`large_table.py`)", large_table),
    "large_table_level10.json": (
        "The 2,000,000-row table at base level 10 (`large_table.py`)",
        large_table,
    ),
    "large_table_before_training_length.json": (
        "The 2,000,000-row table before the training length in optimizer steps (`large_table.py --no-hgb`)",
        large_table,
    ),
    "real_tables.json": ("Real tables against scikit-learn (`real_tables.py`)", real_tables),
    "real_tables_before.json": (
        "Real tables against scikit-learn, before issue 23's training changes (`real_tables.py`)",
        real_tables,
    ),
    "real_tables_before_refit.json": (
        "Real tables against scikit-learn, before the refit on train + validation (`real_tables.py`)",
        real_tables,
    ),
    "real_tables_before_training_length.json": (
        "Real tables against scikit-learn, before the training length in optimizer steps (`real_tables.py`)",
        real_tables,
    ),
    "ladder_vs_optuna.json": ("The ladder against an Optuna search (`ladder_vs_optuna.py`)", ladder_vs_optuna),
    "regularizer_effect.json": ("Each regularizer's effect (`regularizer_effect.py`)", regularizer_effect),
    "overfitting_condition.json": (
        "The overfitting condition on the demo, StopOnOverfitting off and on (`overfitting_condition.py`)",
        overfitting_condition,
    ),
    "serve_load.json": ("The model server under load (`serve_load.py`)", serve_load),
}


def text_run(r: dict) -> list[str]:
    """benchmarks/text.py on one data set: Regula against the TF-IDF baselines, its rounds, time and memory."""
    g, b = r["regula"], r.get("baselines", {})
    logreg, other = b.get("tfidf_logreg", {}), b.get("tfidf_other_columns_logreg", {})

    def base(result: dict) -> str:
        gap = f", gap {f(result['relative_gap'])}" if "relative_gap" in result else ""  # recorded since 2026-12-02
        return f"{f(result.get('test_balanced_accuracy'), 4)} (C={f(result.get('C'))}{gap})" if result else "-"

    registered = f"{f(g['test_balanced_accuracy'], 4)} (round {g['registered_round']})"
    lines = table(
        ["data", "rows", "Regula, test balanced accuracy", "TF-IDF + LogReg", "TF-IDF + other columns",
         "points below the better", "within 1 point", "run", "peak memory"],
        [[r["data"], r["rows"], registered if g["decision"] == "registered" else f"miss ({g['decision']})",
          base(logreg), base(other), f(r.get("points_below_better_baseline"), 2), f(r.get("within_target")),
          f"{f(g['seconds'], 0)} s", f"{f(g['peak_memory_mb'], 0)} MB"]],
    )  # fmt: skip
    steps = g.get("step_seconds", {})
    rows = []
    for n in g["rounds"]:
        usage = n.get("feature_usage") or {}
        seconds = steps.get(f"TrainRound{n['round']}")
        per_epoch = f(seconds / n["epochs"], 1) if seconds and n.get("epochs") else "-"
        rows.append(
            [n["round"], f(n["level"], 1), f"{n['l1']:g}", f(n["gap"]), f(n["validation"]), f(n["test"]),
             n["decision"], n.get("epochs"), per_epoch,
             f"{usage.get('text_features_used', '-')} of {usage.get('text_vocabulary', '-')}"]
        )  # fmt: skip
    lines += ["", *table(["round", "level", "L1", "gap", "validation", "test", "decision", "epochs",
                          "train s per epoch", "n-grams used"], rows)]  # fmt: skip
    predicted = r.get("predict") or {}
    lines += [
        "",
        f"Preprocess {f(steps.get('Preprocess'), 1)} s. `regula predict` on the {f(predicted.get('rows'))} test rows' "
        f"raw CSV: {f(predicted.get('seconds'), 1)} s ({f(predicted.get('rows_per_second'))} rows/s, start-up "
        f"included), peak {f(predicted.get('peak_memory_mb'), 0)} MB, balanced accuracy "
        f"{f(predicted.get('balanced_accuracy'), 4)}.",
    ]
    return lines


def text_update_speed(r: dict) -> list[str]:
    """benchmarks/text.py --update-speed: train.py before and after the lazy n-gram update, on the same splits."""
    u = r["update"] if "update" in r else r["scales"]
    before = f"; `dense (before)` is steps/train.py at commit `{u['before'][:12]}`" if "before" in u else ""
    lines = [
        f"{r['data']}, {u['rows']} rows{before}. Round 1 at each level's strengths; validation balanced accuracy of "
        "the saved model; n-grams with a weight above the tolerance.",
        "",
    ]
    lines += table(
        ["update", "level", "samples/s", "epochs", "train s", "validation balanced accuracy", "n-grams used"],
        [[n["update"], f(n["level"], 1), n["samples_per_second"], n["epochs"], f(n["train_seconds"], 1),
          f(n["validation_balanced_accuracy"], 4), f"{n['text_features_used']} of {n['text_vocabulary']}"]
         for n in u["runs"]],
    )  # fmt: skip
    first = r.get("first_layer")
    if first:
        lines += [
            "",
            f"First layer, forward + backward ({first['vocabulary']} x {first['width']}, batch {first['batch']}): "
            f"nn.EmbeddingBag {f(first['embedding_bag_ms'], 1)} ms, torch.sparse.mm {f(first['sparse_mm_ms'], 1)} ms.",
        ]
    return lines


def text_tokenizers(r: dict) -> list[str]:
    rows = [
        [name, f(t["validation_balanced_accuracy"], 4), f(t["C"]), t["features"], t.get("features_in_use"),
         f(t["entries_per_row"], 1)]
        for name, t in r["tokenizers_rotten_tomatoes"].items()
    ]  # fmt: skip
    header = ["Rotten Tomatoes tokens", "validation balanced accuracy", "C", "features", "in use", "entries per row"]
    return table(header, rows)


def text_round_one(key: str, label: str) -> Callable[[dict], list[str]]:
    """A text.py round-1 comparison (--ngram-dropout, --members): the runs of each value of `key`."""

    def render(r: dict) -> list[str]:
        d = r[key]
        rows = []
        for value, mean in d["means"].items():
            runs = [x for x in d["runs"] if str(x[key]) == value]  # the means' keys: JSON's strings
            rows.append(
                [value, f(mean["validation"], 4), " / ".join(f(x["validation"], 4) for x in runs), f(mean["gap"], 3),
                 " / ".join(f(x["train"], 4) for x in runs), " / ".join(str(x["epochs"]) for x in runs),
                 " / ".join(f(x["seconds"], 1) for x in runs)]
            )  # fmt: skip
        header = [label, "validation (mean)", "per seed", "gap (mean)", "train per seed", "epochs", "seconds"]
        return [f"{r['data']}, {d['rows']} rows, init seeds {d['seeds']}, round 1 at the base strengths:", "",
                *table(header, rows)]  # fmt: skip

    return render


def generic(r: dict) -> list[str]:
    """A results file without a renderer of its own (its benchmark's docs page tables it): its figures as JSON."""
    figures = {k: v for k, v in r.items() if k != "run"}
    text = json.dumps(figures, indent=1, default=str).splitlines()
    shown = text[:GENERIC_LINES] + (
        [f"... ({len(text) - GENERIC_LINES} more lines in the file)"] if len(text) > GENERIC_LINES else []
    )
    return ["```json", *shown, "```"]


GENERIC_LINES = 40
# a results file rendered with an earlier run's file beside it (before / after)
BEFORE = {"real_tables.json": "real_tables_before_training_length.json"}


def renderer(name: str, results: dict | None = None) -> tuple[str, Callable[[dict], list[str]]]:
    if name in RENDERERS:
        return RENDERERS[name]
    if name.startswith("ladder_rounds_"):
        return f"The ladder's rounds: `{name.removesuffix('.json')}` (`ladder_rounds.py`)", ladder_rounds
    if name.startswith("borderline_rule"):
        return f"The borderline rule on test: `{name.removesuffix('.json')}` (`ladder_rules.py`)", borderline_rule
    if name.startswith("text_update_speed"):
        return "Text: the n-gram layer's update, dense against lazy rows (`text.py --update-speed`)", text_update_speed
    if name.startswith("text_l1_scales"):
        return "Text: the n-gram layer's own L1 scale (`text.py --text-l1-scales`)", text_update_speed
    if name.startswith("text_ngram_dropout"):
        return "Text: dropout on the input n-grams, round 1 (`text.py --ngram-dropout`)", text_round_one(
            "ngram_dropout", "n-gram dropout"
        )
    if name.startswith("text_members"):
        return "Text: round 1 as an average of text MLPs (`text.py --members`)", text_round_one("members", "members")
    if name.startswith("text_tokenizers"):
        return "Text: tokenizations, TF-IDF + LogReg on validation (`text.py --tokenizers`)", text_tokenizers
    if name.startswith("text_") and results is not None and "regula" in results:
        return f"Text: `{name.removesuffix('.json')}` against TF-IDF baselines (`text.py`)", text_run
    if results is None or {"variants", "results"} <= set(results):
        return f"Training options: `{name.removesuffix('.json')}` (`train_options.py`)", train_options
    return f"`{name.removesuffix('.json')}`", generic


def render(results_dir: Path = RESULTS) -> str:
    lines = [
        "# Performance and quality figures",
        "",
        "Rendered by `python benchmarks/report.py` from `benchmarks/results/*.json`; do not edit by hand:",
        "`tests/test_performance_docs.py` fails when this file and the results files disagree. How the benchmarks",
        "choose and report (validation for choices, test only where no choice looked, several split seeds):",
        "`benchmarks/README.md`.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        results = results_file.read(path)
        title, render_one = renderer(path.name, results)
        lines += [f"## {title}", "", f"`benchmarks/results/{path.name}`. " + run_line(path.name, results)[0], ""]
        companion = BEFORE.get(path.name)
        if companion and (results_dir / companion).exists():  # the earlier run beside this one
            lines += render_one(results, results_file.read(results_dir / companion)) + [""]
        else:
            lines += render_one(results) + [""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 unless docs/performance.md is up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            sys.exit(f"{DOC.relative_to(REPO)} differs from what benchmarks/results/ renders: run benchmarks/report.py")
        print(f"{DOC.relative_to(REPO)} matches benchmarks/results/")
        return
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
