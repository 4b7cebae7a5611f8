"""What a local run prints about the overfitting notice: the training job's "Training overfits ... (notice sent)"
line is held back, and said after the round line with the round's decision, so that an accepted round does not
read as an overfitting one (the notice's condition is looser than the decision by design: docs/alerts.md)."""

from __future__ import annotations

from pipelines.local import console
from pipelines.local import layout as run_layout
from steps import overfitting


def evaluation(round_: int, decision: str, gap: float, se: float = 0.02) -> dict:
    return {
        "round": round_,
        "decision": decision,
        "generalization_gap": {"relative": gap, "standard_error": se},
        "thresholds": {"max_gap": 0.1},
        "selected": {"round": round_},
    }


def train_log(run_dir, round_: int, gap: float, rise_streak: int) -> None:
    """The round's training log with the line train.py prints once its notice went out (steps/overfitting.py)."""
    detail = overfitting.notice(
        pipeline="regula", job=f"regula-TrainRound{round_}-abc", round_=round_, rounds=3, epoch=13, gap=gap,
        max_gap=0.1, rise_streak=rise_streak, patience=5, stop_enabled=False,
    )  # fmt: skip
    log = run_layout.job_log(run_dir, f"TrainRound{round_}")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"train: epoch 12: ...\ntrain: {detail['summary']} (notice sent)\ntrain: epoch 13: ...\n")


def test_an_accepted_round_that_sent_a_notice_says_it_was_accepted_and_why(tmp_path):
    train_log(tmp_path, 2, gap=0.1011, rise_streak=0)
    line = console.notice_line(tmp_path, evaluation(2, "register", gap=0.102))
    assert line == (
        "   overfitting notice sent during training (epoch 13: the gap 0.1011 is above MaxGap 0.1); the round is "
        "still accepted, within MaxGap + 1 standard error: the notice's condition, met in one epoch, is looser than "
        "the decision (docs/alerts.md)"
    )


def test_an_overfit_round_that_sent_a_notice_says_so_with_its_decision(tmp_path):
    train_log(tmp_path, 1, gap=0.2, rise_streak=3)
    line = console.notice_line(tmp_path, evaluation(1, "overfit", gap=0.25))
    assert line == (
        "   overfitting notice sent during training (epoch 13: the gap 0.2000 is above MaxGap 0.1 and the validation "
        "loss rose 3 epochs in a row (the condition: 3)); the round is overfit"
    )


def test_no_notice_no_line(tmp_path):
    assert console.notice_line(tmp_path, evaluation(1, "register", gap=0.05)) is None  # no log at all
    log = run_layout.job_log(tmp_path, "TrainRound1")
    log.parent.mkdir(parents=True)
    log.write_text("train: epoch 1: ...\n[regula] EventBridge: overfitting notice not sent: no endpoint\n")
    assert console.notice_line(tmp_path, evaluation(1, "register", gap=0.05)) is None


def test_the_jobs_notice_line_is_held_back_unless_verbose(tmp_path):
    train_log(tmp_path, 1, gap=0.2, rise_streak=0)
    raw = "   | " + run_layout.job_log(tmp_path, "TrainRound1").read_text().splitlines()[1]
    assert raw.endswith("(notice sent)")
    for verbose, expected in ((False, []), (True, [raw])):
        shown = []
        console.job_output(shown.append, verbose)(raw)
        assert shown == expected
    shown = []
    console.job_output(shown.append, False)("   | train: epoch 12: ...")
    assert shown == ["   | train: epoch 12: ..."]


def test_a_collapsed_round_says_the_next_level_goes_between():
    assert console.short_reason(evaluation(3, "collapsed", gap=0.0005)) == (
        "validates worse than an earlier round: the next level goes between the last overfitting one and it"
    )


def test_a_last_round_that_lost_an_earlier_rounds_quality_does_not_say_more_regularization_is_the_cure():
    from steps.quality import WENT_TOO_FAR

    lost = {**evaluation(4, "underfit", gap=0.0005), "reason": f"... the regularization of this round {WENT_TOO_FAR}"}
    assert console.short_reason(lost) == (
        "lost the quality of an earlier overfitting round to the regularization, with no round left between"
    )
    plain = {**evaluation(2, "underfit", gap=0.02), "reason": "validation balanced_accuracy 0.37 < 0.38 ..."}
    assert console.short_reason(plain) == "too close to the baseline: more regularization cannot help"


def test_the_round_line_says_when_the_linear_reference_excused_a_gap_and_why_it_did_not():
    excused = evaluation(1, "register", gap=0.18, se=0.01)
    excused["thresholds"] |= {"gap_limit": 0.41, "min_lift": 0.05, "min_quality": 0.0}
    excused["reference"] = {"model": "LogisticRegression(C=10)", "gap": 0.39, "validation": 0.848, "verdict": "excused"}
    assert console.short_reason(excused) == "above MaxGap, within the noise of the linear reference's gap 0.390"

    def overfit(verdict: str | None) -> str:
        e = evaluation(1, "overfit", gap=0.45, se=0.01)
        e["reference"] = {"model": "LogisticRegression(C=1)", "gap": 0.3, "validation": 0.8, "verdict": verdict}
        return console.short_reason(e)

    assert (
        overfit("no_signal") == "above MaxGap; the linear reference finds no signal either, so its gap excuses nothing"
    )
    assert (
        overfit("no_evidence") == "above MaxGap; the linear reference's gap 0.300 is within it, give or take its noise"
    )
    assert overfit("overfits_more") == "above MaxGap and the linear reference's 0.300"
    assert overfit("under_floor") == "within the linear reference's gap 0.300 but under the quality floor"
    assert overfit("no_better") == "within the linear reference's gap 0.300 but validates worse than it"
    # an evaluation written before the verdict was recorded
    assert overfit(None) == "above MaxGap; the linear reference's gap 0.300 excuses it not"


def test_the_run_summary_states_the_reference_rule_only_where_a_reference_was_fitted():
    from pipelines.local.report import summary_lines

    def report(reference):
        row = {
            "round": 1, "regularization": {"dropout": 0.1, "l1": 1e-5, "l2": 0.01, "level": 1.0},
            "generalization_gap": 0.18, "gap_standard_error": 0.01, "validation_quality": 0.85,
            "baseline_quality": 0.333, "test_quality": 0.84, "epochs": 9, "decision": "register",
            "quality_metric": "balanced_accuracy", "reference": reference,
        }  # fmt: skip
        return {
            "rounds": [row],
            "parameters": {"MaxGap": 0.1, "MinLift": 0.05},
            "model_package_arn": "arn:x",
            "status": "Succeeded",
        }

    rule = (
        "a gap above MaxGap passes (GapReference=linear) where a linear model of the same features and split has a "
        "gap above MaxGap beyond its noise, the round's gap is within the noise of that model's, and the round clears "
        "the floor and validates as well as that model"
    )
    fitted = {"model": "LogisticRegression(C=10)", "gap": 0.39, "gap_se": 0.016, "verdict": "excused"}
    assert any(rule in line for line in summary_lines(report(fitted)))
    assert not any("GapReference" in line for line in summary_lines(report(None)))  # images, or within MaxGap
