"""The local engine's parts on their own, without subprocesses or moto: the handlers take a step, its arguments and
an environment and return a result; the attempts retry what the step's RetryPolicies retry; the cache key is the
same for the arguments the job gets; the test hooks are checked before anything runs; the runner alone writes the
execution."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.local.engine import attempts, cache, handlers, retries
from pipelines.local.engine.errors import StepFailed
from pipelines.local.engine.expressions import Context, ExpressionError, resolve
from pipelines.local.engine.faults import Faults, interrupt_plan
from pipelines.local.engine.jobs import DefinitionText, definition_text
from pipelines.local.engine.runner import LocalRunner
from pipelines.local.engine.step_types import StepType


def environment(tmp_path, ctx: Context | None = None, lines: list | None = None) -> handlers.StepEnvironment:
    ctx = ctx or Context(parameters={"Gap": 0.2}, execution={"PipelineExecutionId": "e1"})
    echo = lines.append if lines is not None else (lambda _: None)
    return handlers.StepEnvironment("p", "e1", tmp_path, None, None, ctx, echo=echo, job_echo=echo)


def condition(left, right) -> dict:
    return {"Type": "GreaterThan", "LeftValue": left, "RightValue": right}


def test_a_condition_returns_its_branch_and_outcome_and_resolves_operands_only_as_far_as_it_needs(tmp_path):
    if_steps, else_steps = [{"Name": "A"}], [{"Name": "B"}]
    args = {"Conditions": [condition({"Get": "Parameters.Gap"}, 0.1)], "IfSteps": if_steps, "ElseSteps": else_steps}
    result = handlers.condition({"Name": "Check"}, args, environment(tmp_path))
    assert (result.outcome, result.branch, result.properties) == ("True", if_steps, {"Outcome": True})
    # an Or decided by its first condition never resolves the second (a step that has not run)
    unknown = condition({"Get": "Steps.NotRun.Value"}, 0)
    args["Conditions"] = [{"Type": "Or", "Conditions": [condition(1, 0), unknown]}]
    assert handlers.condition({"Name": "Check"}, args, environment(tmp_path)).branch == if_steps
    args["Conditions"] = [unknown]
    with pytest.raises(ExpressionError, match="step 'NotRun' has not run"):
        handlers.condition({"Name": "Check"}, args, environment(tmp_path))


def test_a_fail_step_returns_its_message_as_the_failure(tmp_path):
    result = handlers.fail({"Name": "Stop"}, {"ErrorMessage": "gap too large"}, environment(tmp_path))
    assert (result.failure, result.error, result.properties) == ("gap too large", None, None)


def test_step_failed_names_the_step_and_says_the_reason():
    error = StepFailed("TrainRound1", "no sm_drivers channel")
    assert (error.step, error.reason, str(error)) == ("TrainRound1", "no sm_drivers channel", "no sm_drivers channel")


def test_job_names_are_what_sagemaker_accepts():
    assert handlers.job_name("my_pipe", "Train.Round1", "abc") == "my-pipe-Train-Round1-abc"
    assert len(handlers.job_name("p" * 80, "Step", "id")) == 63


POLICY = {"ExceptionType": [retries.CAPACITY_ERROR], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 2}


def test_attempts_retry_a_transient_failure_with_backoff_and_keep_the_last_result(tmp_path):
    calls, waits, lines = [], [], []

    def flaky(step, args, env):
        calls.append(args)
        if len(calls) < 3:
            return handlers.StepResult(error=retries.TransientError(retries.CAPACITY_ERROR, "no instance"))
        return handlers.StepResult(properties={"ok": True}, log="the log")

    step = {"Name": "Prep", "Type": "Processing", "RetryPolicies": [POLICY]}
    done = attempts.attempt(step, {"a": 1}, flaky, environment(tmp_path, lines=lines), Faults(), waits.append)
    assert (done.count, done.result.properties, done.result.log, waits) == (3, {"ok": True}, "the log", [2, 6])
    assert done.failed == [f"{retries.CAPACITY_ERROR}: no instance"] * 2
    assert calls == [{"a": 1}] * 3  # the same resolved arguments each attempt
    assert "-> Prep attempt 2 of 3 after a capacity error (waiting 2 s)" in lines


def test_attempts_give_up_after_max_attempts_and_never_retry_a_job_error(tmp_path):
    def always(step, args, env):
        raise retries.TransientError(retries.CAPACITY_ERROR, "no instance")

    step = {"Name": "Prep", "Type": "RegisterModel", "RetryPolicies": [POLICY]}
    done = attempts.attempt(step, {}, always, environment(tmp_path), Faults(retry_scale=0), lambda _: None)
    assert done.count == 3 and isinstance(done.result.error, StepFailed) and done.result.error.step == "Prep"
    assert str(done.result.error) == f"{retries.CAPACITY_ERROR}: no instance (gave up after 3 attempts)"

    def crash(step, args, env):
        return handlers.StepResult(error=StepFailed("Prep", "bad table (exit code 2)"), log="Prep.log")

    done = attempts.attempt(step, {}, crash, environment(tmp_path), Faults(), lambda _: None)
    assert (done.count, str(done.result.error), done.result.log) == (1, "bad table (exit code 2)", "Prep.log")


def test_an_injected_fault_fails_the_attempt_before_the_handler_runs(tmp_path):
    ran = []
    step = {"Name": "Prep", "Type": "Processing", "RetryPolicies": [POLICY]}
    faults = Faults(plan={"Prep": [retries.CAPACITY_ERROR]}, retry_scale=0)
    done = attempts.attempt(
        step, {}, lambda *a: ran.append(1) or handlers.StepResult(), environment(tmp_path), faults, lambda _: None
    )
    assert (done.count, ran, done.result.error) == (2, [1], None)


def test_the_cache_key_is_the_same_for_the_arguments_the_job_gets():
    step = {"Name": "Prep", "Type": "Processing", "CacheConfig": {"Enabled": True}}
    arguments = {"AppSpecification": {"ContainerEntrypoint": ["python3", {"Get": "Parameters.Script"}]}}
    ctx = Context(parameters={"Script": "/opt/ml/x.py"}, execution={})
    marked = resolve(definition_text(arguments), ctx)
    entrypoint = marked["AppSpecification"]["ContainerEntrypoint"]
    assert isinstance(entrypoint[0], DefinitionText) and not isinstance(entrypoint[1], DefinitionText)
    store = cache.StepCache(Path("unused"))  # only its presence counts here
    assert attempts.cache_key(store, "p", step, marked) == cache.cache_key("p", step, resolve(arguments, ctx))
    assert attempts.cache_key(None, "p", step, marked) is None
    assert attempts.cache_key(store, "p", {**step, "CacheConfig": {"Enabled": False}}, marked) is None
    assert attempts.cache_key(store, "p", {**step, "Type": StepType.FAIL}, marked) is None


def test_a_cache_miss_is_none_and_says_nothing_when_there_is_no_entry(tmp_path):
    step = {"Name": "Prep", "Type": "Processing", "CacheConfig": {"Enabled": True}}
    lines = []
    found = attempts.from_cache(cache.StepCache(tmp_path), step, {}, "k", environment(tmp_path, lines=lines))
    assert (found, lines) == (None, [])


TRAINING = {"Name": "TrainRound1", "Type": "Training", "Arguments": {}}
DEFINITION = {
    "Parameters": [],
    "Steps": [
        {"Name": "Prep", "Type": "Processing", "Arguments": {}},
        {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": [TRAINING], "ElseSteps": []}},
    ],
}


def test_the_interrupt_hook_is_checked_against_the_pipeline_before_any_step():
    assert interrupt_plan("TrainRound1:after_epochs=5, TrainRound1", DEFINITION) == {"TrainRound1": "after_epochs=5"}
    assert interrupt_plan("TrainRound1", DEFINITION) == {"TrainRound1": ""}
    with pytest.raises(ValueError, match="'TrainRound1:after=5' is not one of STEP, STEP:after_checkpoint or"):
        interrupt_plan("TrainRound1:after=5", DEFINITION)
    with pytest.raises(ValueError, match="no training step 'Prep'; its training steps: TrainRound1"):
        interrupt_plan("Prep:after_checkpoint", DEFINITION)
    with pytest.raises(ValueError, match="REGULA_LOCAL_RETRY_SCALE must be a number >= 0"):
        Faults.from_environ({"REGULA_LOCAL_RETRY_SCALE": "fast"}, DEFINITION)


def test_a_runner_with_a_hook_naming_no_step_of_its_pipeline_refuses_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("REGULA_LOCAL_INTERRUPT", "TrainRound9")
    with pytest.raises(ValueError, match="no training step 'TrainRound9'"):
        LocalRunner(DEFINITION, tmp_path / "run", s3=None, sagemaker=None, region="us-east-1")
    assert not (tmp_path / "run").exists()


def test_the_runner_records_a_condition_then_a_fail_step_and_runs_nothing_after(tmp_path):
    fail = {
        "Name": "Stop",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": ["gap", {"Get": "Parameters.Gap"}]}}},
    }
    check = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {"Conditions": [condition({"Get": "Parameters.Gap"}, 0.1)], "IfSteps": [fail], "ElseSteps": []},
    }
    after = {"Name": "After", "Type": "Fail", "DependsOn": ["Check"], "Arguments": {"ErrorMessage": "not reached"}}
    definition = {"Parameters": [{"Name": "Gap", "Type": "Float", "DefaultValue": 0.2}], "Steps": [check, after]}
    lines = []
    runner = LocalRunner(definition, tmp_path / "run", None, None, "us-east-1", echo=lines.append, faults=Faults())
    execution = runner.run("p")
    assert (execution.status, execution.failed_step, execution.failure_reason) == ("Failed", "Stop", "gap 0.2")
    assert [(s.name, s.status, s.outcome) for s in execution.steps] == [
        ("Check", "Succeeded", "True"),
        ("Stop", "Failed", ""),
    ]
    assert execution.properties == {"Check": {"Outcome": True}}
    assert "   (Check: True)" in lines and "-> Stop (Fail)" in lines


def test_a_step_type_the_runner_does_not_run_fails_the_step_with_its_name(tmp_path):
    definition = {"Parameters": [], "Steps": [{"Name": "Tune", "Type": "Tuning", "Arguments": {}}]}
    runner = LocalRunner(definition, tmp_path / "run", None, None, "us-east-1", echo=lambda _: None, faults=Faults())
    execution = runner.run("p")
    assert (execution.failed_step, execution.failure_reason) == (
        "Tune",
        "step type Tuning is not supported by the local runner",
    )


def test_a_fail_step_with_no_message_still_fails_the_execution(tmp_path):
    definition = {"Parameters": [], "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {}}]}
    runner = LocalRunner(definition, tmp_path / "run", None, None, "us-east-1", echo=lambda _: None, faults=Faults())
    execution = runner.run("p")
    assert (execution.status, execution.failed_step, execution.failure_reason) == ("Failed", "Stop", "")
