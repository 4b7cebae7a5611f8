"""The overfitting condition the team asked for, the rule that may stop a training job on it, and the one notice per
episode that `regula alerts apply --email-on overfitting` emails.

The condition, in the team's words: in an epoch, the validation loss has risen RISE_EPOCHS epochs in a row, OR the
generalization gap (steps/quality.relative_gap) is above the execution's MaxGap. Either part alone makes it hold.
It is the per-epoch `OverfittingSignal` metric.

An episode is one training job in which the condition held: the job's first such epoch sends one EventBridge event
(source SOURCE, detail type DETAIL_TYPE) with what the email says: pipeline, execution, round, training job, gap and
MaxGap, the epochs of rising validation loss, what the ladder does next. Later epochs of the same job send nothing;
the next job (the next round, the next execution) sends its own. A job resumed from a checkpoint replays its history
and does not send again.

Stop on overfitting (StopOnOverfitting=yes): the job ends once the condition has held `patience` epochs in a row and
keeps the weights of its lowest validation loss, as early stopping does. How the two relate: early stopping ends a
job after `patience` epochs without a new lowest validation loss. The rising part alone, held `patience` epochs in a
row, means the validation loss rose every epoch for patience + RISE_EPOCHS - 1 epochs: early stopping has ended the
job by then. So the stop rule adds one thing: it ends a job whose gap stays above MaxGap for `patience` epochs while
the validation loss still creeps down, which early stopping would let run on to MaxEpochs.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass

RISE_EPOCHS = 3  # the condition's rising part: the validation loss rose this many epochs in a row
SOURCE = "regula"  # EventBridge source of the notice (custom sources may not start with "aws.")
DETAIL_TYPE = "Regula Training Overfitting"

# SageMaker Pipelines names a step's job pipelines-<execution id>-<step>-<suffix> (seen, not documented); the local
# runner <pipeline>-<step>-<execution id>. Anything else: the execution is not named in the notice.
_SAGEMAKER_JOB = re.compile(r"pipelines-(?P<execution>[a-z0-9]{12})-.+")
_LOCAL_JOB = re.compile(r".+-(?P<execution>[0-9a-f]{12})")


def holds(gap: float, max_gap: float, rise_streak: int) -> bool:
    """The condition in one epoch; a gap that is not a number (diverged training) is not above MaxGap."""
    return (math.isfinite(gap) and gap > max_gap) or rise_streak >= RISE_EPOCHS


@dataclass
class Watch:
    """One training job's view of the condition: how long it has held, whether this epoch starts the episode, and
    whether the job should stop for it."""

    max_gap: float
    patience: int
    stop_enabled: bool
    held: int = 0  # epochs in a row the condition has held, up to this one
    episode_epoch: int = 0  # the first epoch it held in this job; 0: not yet
    starts_episode: bool = False  # this epoch is the episode's first: the notice is due

    def update(self, epoch: int, gap: float, rise_streak: int) -> bool:
        """Record an epoch; whether the condition holds in it."""
        now = holds(gap, self.max_gap, rise_streak)
        self.held = self.held + 1 if now else 0
        self.starts_episode = now and not self.episode_epoch
        if self.starts_episode:
            self.episode_epoch = epoch
        return now

    def replay(self, history: list[dict]) -> None:
        """The epochs a resumed job already trained: their notice, if any, was sent before the interruption."""
        for record in history:
            self.update(record["epoch"], record["gap"], record["val_loss_rise_streak"])
        self.starts_episode = False

    @property
    def stop(self) -> bool:
        return self.stop_enabled and self.held >= self.patience


def execution_of(job_name: str) -> str:
    """The pipeline execution id a training job's name carries, or "" where it carries none."""
    for pattern in (_SAGEMAKER_JOB, _LOCAL_JOB):
        match = pattern.fullmatch(job_name)
        if match:
            return match["execution"]
    return ""


def next_steps(round_: int, rounds: int, max_gap: float, patience: int, stop_enabled: bool) -> str:
    """What happens after this epoch: in the job, then on the ladder (steps/evaluate.select)."""
    if stop_enabled:
        job = (
            f"StopOnOverfitting is on: the job stops once the condition has held {patience} epochs in a row, keeping "
            "the weights of its lowest validation loss."
        )
    else:
        job = (
            f"The job trains on until early stopping ({patience} epochs without a lower validation loss) or "
            "MaxEpochs, and keeps the weights of its lowest validation loss."
        )
    if not rounds:  # train.py run by hand, without --rounds
        ladder = (
            f"Then evaluation decides: a gap above MaxGap {max_gap:g} retrains with stronger regularization where "
            "the pipeline has a round left, else the run gives up."
        )
    elif round_ < rounds:
        ladder = (
            f"Then evaluation decides: if round {round_}'s gap is above MaxGap {max_gap:g}, round {round_ + 1} of "
            f"{rounds} retrains with stronger regularization; if it is within MaxGap and good enough, the model is "
            "registered; if it underfits, the run gives up."
        )
    else:
        ladder = (
            f"Round {round_} is the last of {rounds}: if evaluation finds its gap above MaxGap {max_gap:g} (or it "
            "underfits), the run gives up (RunGaveUp); otherwise the model is registered."
        )
    return f"{job} {ladder}"


def notice(
    *,
    pipeline: str,
    job: str,
    round_: int,
    rounds: int,
    epoch: int,
    gap: float,
    max_gap: float,
    rise_streak: int,
    patience: int,
    stop_enabled: bool,
) -> dict:
    """The event's detail: everything the email says (the input transformer in pipelines/alerts/resources.py
    picks the fields)."""
    reasons = []
    if math.isfinite(gap) and gap > max_gap:
        reasons.append(f"the gap {gap:.4f} is above MaxGap {max_gap:g}")
    if rise_streak >= RISE_EPOCHS:
        reasons.append(f"the validation loss rose {rise_streak} epochs in a row (the condition: {RISE_EPOCHS})")
    execution = execution_of(job)
    return {
        "summary": f"Training overfits in pipeline {pipeline}, round {round_}{f' of {rounds}' if rounds else ''}, "
        f"epoch {epoch}: " + " and ".join(reasons) + ".",
        "pipeline": pipeline,
        "execution": execution or f"not in the job name: the execution that ran training job {job}",
        "round": round_,
        "rounds": rounds,
        "trainingJob": job,
        "epoch": epoch,
        "gap": round(gap, 6) if math.isfinite(gap) else str(gap),
        "maxGap": max_gap,
        "validationLossRiseEpochs": rise_streak,
        "validationLossRise": f"{rise_streak} epochs in a row (the condition: {RISE_EPOCHS})",
        "riseEpochsCondition": RISE_EPOCHS,
        "condition": f"validation loss up {RISE_EPOCHS} epochs in a row OR gap above MaxGap",
        "next": next_steps(round_, rounds, max_gap, patience, stop_enabled),
    }


def announce(args, job: str, record: dict) -> None:
    """The episode's notice, from train.py's epoch loop (rank 0), where metrics are sent (steps/cloudwatch.py)."""
    from steps.cloudwatch import emission_configured  # here: pipelines/alerts/resources.py imports this module

    if not emission_configured():
        return
    detail = notice(
        pipeline=args.pipeline_name,
        job=job,
        round_=args.round,
        rounds=args.rounds,
        epoch=record["epoch"],
        gap=record["gap"],
        max_gap=args.max_gap,
        rise_streak=record["val_loss_rise_streak"],
        patience=args.patience,
        stop_enabled=args.stop_on_overfitting == "yes",
    )
    if send(detail):
        print(f"train: {detail['summary']} (notice sent)", flush=True)


def send(detail: dict, client=None) -> bool:
    """Put the notice on the default event bus; never raises into training (a lost notice is said on stderr)."""
    try:
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2})
            client = boto3.client("events", config=config)
        entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}
        answer = client.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(answer["Entries"][0].get("ErrorMessage", "refused"))
        return True
    except Exception as error:  # no endpoint, no permission, throttled: the job trains on
        print(f"[regula] EventBridge: overfitting notice not sent: {error}", file=sys.stderr)
        return False
