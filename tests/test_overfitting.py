"""The overfitting condition the team asked for, StopOnOverfitting and the one notice per training job: the rule's
cases, then steps/train.py run as SageMaker runs it against a moto server, its notice read back through an EventBridge
rule into an SQS queue and its stop metric from CloudWatch."""

from __future__ import annotations

import json
import math
import time

import pytest
from helpers import run_training

from steps.overfitting import DETAIL_TYPE, RISE_EPOCHS, SOURCE, Watch, execution_of, holds, next_steps


def test_the_condition_is_the_rise_of_3_epochs_or_the_gap_above_max_gap():
    assert RISE_EPOCHS == 3
    assert holds(0.2, 0.1, 0)  # the gap alone
    assert holds(0.0, 0.1, 3)  # the rise alone
    assert not holds(0.1, 0.1, 2)  # at MaxGap is not above it; 2 rises are not 3
    assert not holds(math.nan, 0.1, 0) and holds(math.nan, 0.1, 3)  # a gap that is no number is not above


def test_one_episode_per_job_and_the_stop_after_patience_epochs_in_a_row():
    epochs = [(0.05, 0), (0.2, 0), (0.05, 0), (0.2, 0), (0.0, 3), (0.2, 4)]  # holds: no, yes, no, yes, yes, yes
    on, off = Watch(0.1, patience=3, stop_enabled=True), Watch(0.1, patience=3, stop_enabled=False)
    seen = []
    for epoch, (gap, streak) in enumerate(epochs, 1):
        seen.append((on.update(epoch, gap, streak), on.starts_episode, on.held, on.stop))
        off.update(epoch, gap, streak)
        assert not off.stop  # the default: the condition never ends a job
    assert [s[0] for s in seen] == [False, True, False, True, True, True]
    assert [s[1] for s in seen] == [False, True, False, False, False, False]  # the notice once, at its first epoch
    assert [s[2] for s in seen] == [0, 1, 0, 1, 2, 3]  # in a row: an epoch without it starts again
    assert [s[3] for s in seen] == [False] * 5 + [True]
    assert on.episode_epoch == 2


def test_a_job_resumed_from_its_checkpoint_does_not_send_the_notice_again():
    history = [{"epoch": 1, "gap": 0.3, "val_loss_rise_streak": 0}, {"epoch": 2, "gap": 0.3, "val_loss_rise_streak": 0}]
    watch = Watch(0.1, patience=3, stop_enabled=True)
    watch.replay(history)
    assert not watch.starts_episode and watch.held == 2
    watch.update(3, 0.3, 0)
    assert not watch.starts_episode and watch.stop  # the epochs before the interruption count
    fresh = Watch(0.1, patience=3, stop_enabled=True)
    fresh.replay([{"epoch": 1, "gap": 0.0, "val_loss_rise_streak": 0}])
    fresh.update(2, 0.3, 0)
    assert fresh.starts_episode


def test_the_execution_is_read_from_the_job_name_sagemaker_and_the_local_runner_give():
    assert execution_of("pipelines-7ffuwp4jxq1h-TrainRound1-TyX1ePD6bG") == "7ffuwp4jxq1h"
    assert execution_of("regula-TrainRound2-0a1b2c3d4e5f") == "0a1b2c3d4e5f"
    assert execution_of("local") == execution_of("my-own-job") == ""


def test_next_says_what_the_ladder_does():
    middle = next_steps(1, 3, 0.1, 10, stop_enabled=False)
    assert "round 2 of 3 retrains with stronger regularization" in middle and "early stopping (10 epochs" in middle
    last = next_steps(3, 3, 0.1, 10, stop_enabled=True)
    assert "Round 3 is the last of 3" in last and "the run gives up" in last and "StopOnOverfitting is on" in last


def notices_queue(clients_with_sqs):
    events, sqs = clients_with_sqs
    url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    events.put_rule(Name="notices", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule="notices", Targets=[{"Id": "queue", "Arn": arn}])
    return url


def received(sqs, url) -> list[dict]:
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        found += [json.loads(m["Body"]) for m in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


@pytest.mark.parametrize("stop", ["yes", "no"])
def test_training_sends_one_notice_per_job_and_stops_on_overfitting_only_when_asked(
    stop, splits, tmp_path, clients, boto_session, aws
):
    sqs = boto_session.client("sqs", endpoint_url=aws.endpoint)
    url = notices_queue((clients["events"], sqs))
    job = "regula-TrainRound1-0a1b2c3d4e5f"
    # MaxGap 0: the gap is above it from the first epoch on, so the condition holds every epoch
    result = run_training(
        splits,
        tmp_path / "model",
        *("--max_gap", "0", "--patience", "3", "--max_epochs", "40", "--stop_on_overfitting", stop),
        *("--round", "1", "--rounds", "2", "--pipeline_name", "regula"),
        env={"REGULA_METRICS": "on", "TRAINING_JOB_NAME": job},
    )
    assert result.returncode == 0, result.stderr
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    best = min(history, key=lambda r: r["val_loss"])
    assert config["best_epoch"] == best["epoch"]  # the best weights are kept either way
    if stop == "yes":
        assert len(history) == 3 and all(r["gap"] > 0 for r in history)
        assert "overfitting held 3 epochs in a row: stopping (StopOnOverfitting)" in result.stdout
    else:  # early stopping alone: the validation loss still falls after 3 epochs
        assert len(history) > 3 and "StopOnOverfitting" not in result.stdout

    notices = received(sqs, url)
    assert len(notices) == 1, "one notice per job, not one per epoch"
    detail = notices[0]["detail"]
    assert (detail["pipeline"], detail["execution"], detail["trainingJob"]) == ("regula", "0a1b2c3d4e5f", job)
    assert (detail["round"], detail["rounds"], detail["epoch"], detail["maxGap"]) == (1, 2, 1, 0.0)
    assert detail["gap"] == pytest.approx(history[0]["gap"], abs=1e-6)
    assert detail["validationLossRiseEpochs"] == history[0]["val_loss_rise_streak"]
    assert "round 2 of 2 retrains with stronger regularization" in detail["next"]
    assert ("StopOnOverfitting is on" in detail["next"]) == (stop == "yes")

    series = clients["cloudwatch"].get_metric_statistics(
        Namespace="Regula",
        MetricName="StoppedForOverfitting",
        Dimensions=[{"Name": "Pipeline", "Value": "regula"}, {"Name": "TrainingJob", "Value": job}],
        StartTime=time.time() - 600,
        EndTime=time.time() + 60,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in series] == ([1.0] if stop == "yes" else [])
