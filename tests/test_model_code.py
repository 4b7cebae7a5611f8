"""The model contract (steps/model_code.py): a team's own PyTorch model trains under the ladder, is refused with one
line naming its file and line when it breaks the contract, travels inside the artifact and is served from there
alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import REPO, STEPS, regula, regula_here, run_folders, run_script
from torch import nn

from steps import model_code
from steps.model_code import ModelCodeError, ModelSpec

EXAMPLE = REPO / "examples" / "custom_tabular" / "model.py"
THREADS = {"REGULA_TORCH_THREADS": "1", "REGULA_METRICS": "off"}

# A team's model that takes the round's dropout as an argument (nn.Dropout).
WITH_ARGUMENT = """
from torch import nn

def build_model(spec, dropout):
    return nn.Sequential(nn.Linear(spec.n_features, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, spec.n_outputs))
"""
# One that ignores it (build_model(spec) only) and holds an nn.Dropout1d over channels of its hidden layer: Regula
# sets their p.
WITHOUT_ARGUMENT = """
import torch
from torch import nn

class Channels(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.inp = nn.Linear(n_features, 32)
        self.drop = nn.Dropout1d(0.0)
        self.out = nn.Linear(32, n_outputs)

    def forward(self, x):
        h = torch.relu(self.inp(x)).view(len(x), 4, 8)  # 4 channels of 8
        return self.out(self.drop(h).flatten(1))

def build_model(spec):
    return Channels(spec.n_features, spec.n_outputs)
"""


def write(folder: Path, text: str, name: str = "model.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.lstrip("\n"))
    return path


# -- the contract's checks: one line naming the file and line ------------------------------------------------------

BAD = {
    "no build_model": ("import torch\n", "model code bad.py defines no build_model(spec, dropout) function"),
    "wrong signature": (
        "# version 2\ndef build_model(spec, dropout, width):\n    pass\n",
        "model code bad.py:2: build_model must take (spec, dropout) or (spec), not (spec, dropout, width)",
    ),
    "raises while building": (
        "def build_model(spec, dropout):\n    width = 3\n    raise RuntimeError(f'no layer of width {width}')\n",
        "model code bad.py:3: build_model failed: RuntimeError: no layer of width 3",
    ),
    "syntax error": ("def build_model(spec, dropout):\n    return (\n", "model code bad.py:2: importing it failed"),
    "import error": ("import no_such_package_anywhere\n", "model code bad.py:1: importing it failed: ModuleNotFound"),
    "not a module": (
        "def build_model(spec, dropout):\n    return 42\n",
        "model code bad.py: build_model returned int, not an nn.Module",
    ),
    "wrong output shape": (
        "from torch import nn\ndef build_model(spec, dropout):\n    return nn.Linear(spec.n_features, 2)\n",
        "model code bad.py: the model returns (4, 2) for a batch of 4, expected (4, 3): class logits",
    ),
    "non-finite parameters": (
        "import torch\nfrom torch import nn\ndef build_model(spec, dropout):\n"
        "    m = nn.Linear(spec.n_features, spec.n_outputs)\n    m.weight.data[0, 0] = float('nan')\n    return m\n",
        "model code bad.py: parameters are not finite after building: weight",
    ),
    "forward fails": (
        "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.l = nn.Linear(5, 3)\n    def forward(self, x):\n        return self.l(x)\n"
        "def build_model(spec, dropout):\n    return M()\n",
        "model code bad.py:7: the forward pass failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_model_that_breaks_the_contract_is_refused_naming_its_file_and_line(case, tmp_path):
    text, message = BAD[case]
    path = write(tmp_path, text, "bad.py")
    with pytest.raises(ModelCodeError) as error:
        model_code.dry_run(path)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_file_and_a_folder_without_model_py_are_refused(tmp_path):
    with pytest.raises(ModelCodeError, match="does not exist"):
        model_code.load(tmp_path / "nope.py")
    (tmp_path / "pkg").mkdir()
    with pytest.raises(ModelCodeError, match="has no model.py"):
        model_code.load(tmp_path / "pkg")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelCodeError, match="must be a .py file"):
        model_code.load(tmp_path / "notes.txt")


def test_a_file_name_that_a_shell_or_an_s3_key_would_misread_is_refused(tmp_path):
    hostile = write(tmp_path, WITH_ARGUMENT, "x';touch pwned;'.py")
    with pytest.raises(ModelCodeError, match="file names may hold only letters, digits"):
        model_code.load(hostile)
    folder = tmp_path / "pkg"
    write(folder, WITH_ARGUMENT)
    write(folder, "", "$(reboot).py")
    with pytest.raises(ModelCodeError, match=r"\$\(reboot\)\.py"):
        model_code.load(folder)


def test_render_builds_the_model_once_and_refuses_a_broken_one_before_anything_is_uploaded(tmp_path):
    bad = write(tmp_path, BAD["raises while building"][0], "bad.py")
    result = regula_here("render", "--model-code", str(bad), "--output", str(tmp_path / "p.json"))
    assert result.returncode != 0
    assert result.stderr.strip() == f"regula: error: {BAD['raises while building'][1]}"
    assert not (tmp_path / "p.json").exists()


def test_the_rendered_definition_carries_the_model_code_with_trainings_code(tmp_path):
    from pipelines.definition.render import render
    from pipelines.settings import Settings

    definition, session = render(Settings(model_code=str(EXAMPLE)))
    steps = {s["Name"]: s for s in json.loads(definition)["Steps"]}
    train = steps["TrainRound1"]["Arguments"]
    assert train["HyperParameters"]["model_code"] == "model_code/model.py"
    packed = [key for key in session.uploads if key.endswith("/model_code/model.py")]
    assert packed and all(session.uploads[key] == EXAMPLE.read_bytes() for key in packed)
    default, _ = render(Settings())
    assert "model_code" not in json.loads(default)["Steps"][1]["Arguments"]["HyperParameters"]


# -- what Regula does to the model ---------------------------------------------------------------------------------


def test_dropout_reaches_every_dropout_module_also_when_build_model_ignores_it(tmp_path):
    spec = ModelSpec(n_features=16, n_outputs=3, problem_type="classification")
    code = model_code.load(write(tmp_path, WITHOUT_ARGUMENT))
    model = model_code.build(code, spec, 0.37)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout1d)] == [0.37]
    with_argument = model_code.build(model_code.load(write(tmp_path / "b", WITH_ARGUMENT)), spec, 0.21)
    assert [m.p for m in with_argument.modules() if isinstance(m, nn.Dropout)] == [0.21]


def test_l1_penalizes_weights_by_default_and_what_the_hook_names(tmp_path):
    spec = ModelSpec(n_features=16, n_outputs=3, problem_type="classification")
    code = model_code.load(write(tmp_path, WITH_ARGUMENT))
    model = model_code.build(code, spec, 0.1)
    assert [tuple(p.shape) for p in model_code.l1_parameters(code, model)] == [(32, 16), (3, 32)]
    hooked = write(tmp_path / "h", WITH_ARGUMENT + "\ndef l1_parameters(model):\n    return [model[0].weight]\n")
    code = model_code.load(hooked)
    model = model_code.build(code, spec, 0.1)
    assert [tuple(p.shape) for p in model_code.l1_parameters(code, model)] == [(32, 16)]
    stranger = write(tmp_path / "s", WITH_ARGUMENT + "\nimport torch\ndef l1_parameters(model):\n"
                     "    return [torch.nn.Parameter(torch.ones(2, 2))]\n")  # fmt: skip
    code = model_code.load(stranger)
    with pytest.raises(ModelCodeError, match="l1_parameters must return parameters of the model"):
        model_code.l1_parameters(code, model_code.build(code, spec, 0.1))


def test_a_folder_of_model_code_is_a_package_whose_modules_import_each_other(tmp_path):
    folder = tmp_path / "net"
    write(
        folder, "from torch import nn\n\ndef head(width, outputs):\n    return nn.Linear(width, outputs)\n", "parts.py"
    )
    body = "    return nn.Sequential(nn.Linear(spec.n_features, 8), nn.Dropout(dropout), head(8, spec.n_outputs))\n"
    write(folder, "from torch import nn\nfrom .parts import head\n\ndef build_model(spec, dropout):\n" + body)
    code = model_code.load(folder)
    assert code.folder and code.name == "model.py"
    model = model_code.build(code, ModelSpec(n_features=5, n_outputs=2, problem_type="classification"), 0.3)
    assert model(torch.zeros(3, 5)).shape == (3, 2)
    before = model_code.digest(folder, "model.py", True)
    (folder / "parts.py").write_text((folder / "parts.py").read_text() + "# changed\n")
    assert model_code.digest(folder, "model.py", True) != before, "every file of the folder is the code"


def test_two_files_of_the_same_name_do_not_shadow_each_other_or_installed_modules(tmp_path):
    import steps.model

    a = model_code.load(write(tmp_path / "a", WITH_ARGUMENT))
    b = model_code.load(write(tmp_path / "b", WITHOUT_ARGUMENT))
    assert a.module is not b.module and a.sha256 != b.sha256
    assert sys.modules["steps.model"] is steps.model and "model" not in sys.modules


# -- the artifact carries its code and serves from it alone ---------------------------------------------------------


def packed_model(tmp_path: Path, text: str) -> Path:
    """A model folder as training saves it, with the team's code packed."""
    from steps import model as model_module

    spec = ModelSpec(n_features=16, n_outputs=3, problem_type="classification")
    code = model_code.load(write(tmp_path / "source", text))
    model = model_code.build(code, spec, 0.2)
    folder = tmp_path / "artifact"
    record = model_code.pack(code, folder / "code")
    model_module.save(model, {"spec": spec.as_dict(), "dropout": 0.2, "model_code": record}, folder)
    return folder


def test_an_artifact_loads_its_own_model_code_and_refuses_code_that_is_not(tmp_path):
    from steps import model as model_module

    folder = packed_model(tmp_path, WITH_ARGUMENT)
    model, config = model_module.load(folder)
    assert config["model_code"]["name"] == "model.py" and not model.training
    (folder / "code" / "model_code" / "model.py").write_text(WITH_ARGUMENT + "\nimport os  # planted\n")
    with pytest.raises(ModelCodeError, match="not the code it was trained with"):
        model_module.load(folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_code"]["name"] = "../../source/model.py"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelCodeError, match="is not inside its model_code/ folder"):
        model_module.load(folder)


# -- training: the contract checked before the first epoch, checkpoints --------------------------------------------


def test_training_refuses_a_model_whose_outputs_do_not_fit_the_data_before_the_first_epoch(splits, tmp_path):
    bad = write(
        tmp_path,
        "from torch import nn\ndef build_model(spec, dropout):\n    return nn.Linear(spec.n_features, 3)\n",
        "bad.py",
    )
    failure = tmp_path / "failure"
    result = run_script(
        "train.py",
        *("--train", str(splits / "train"), "--validation", str(splits / "validation")),
        *("--model_dir", str(tmp_path / "model"), "--model_code", str(bad)),
        env={**THREADS, "SM_OUTPUT_FAILURE": str(failure)},
    )
    message = "train: model code bad.py: the model returns (4, 3) for a batch of 4, expected (4, 10): class logits"
    assert (result.returncode, result.stderr.strip()) == (2, f"ERROR {message}")
    assert failure.read_text().strip() == message
    assert "epoch 1:" not in result.stdout and not (tmp_path / "model").exists()


def test_a_model_without_dropout_modules_is_trained_with_a_warning_in_the_log_and_the_config(splits, tmp_path):
    plain = write(tmp_path, "from torch import nn\ndef build_model(spec, dropout):\n"
                  "    return nn.Linear(spec.n_features, spec.n_outputs)\n", "plain.py")  # fmt: skip
    result = run_script(
        "train.py",
        *("--train", str(splits / "train"), "--validation", str(splits / "validation")),
        *("--model_dir", str(tmp_path / "model"), "--model_code", str(plain), "--max_epochs", "3"),
        env=THREADS,
    )
    assert result.returncode == 0, result.stderr
    assert "train: WARNING: the model has no dropout module (nn.Dropout*)" in result.stdout
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["dropout_modules"] == 0 and config["model"].startswith("plain.py (sha256 ")


@pytest.mark.slow
def test_a_team_model_resumes_from_its_checkpoint_bit_for_bit(splits, tmp_path):
    code = write(tmp_path, WITHOUT_ARGUMENT)
    common = ["--train", str(splits / "train"), "--validation", str(splits / "validation"), "--model_code", str(code)]
    env = {**os.environ, "PYTHONPATH": str(REPO), **THREADS}
    whole = subprocess.run([sys.executable, str(STEPS / "train.py"), *common, "--model_dir", str(tmp_path / "a")],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "checkpoints"
    args = [*common, "--checkpoint_dir", str(folder), "--checkpoint_seconds", "1000"]
    stopped = subprocess.Popen([sys.executable, str(STEPS / "train.py"), *args, "--model_dir", str(tmp_path / "b")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for line in stopped.stdout:
        if line.startswith("epoch 4:"):
            stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=60) == 128 + signal.SIGTERM
    resumed = subprocess.run([sys.executable, str(STEPS / "train.py"), *args, "--model_dir", str(tmp_path / "b")],
                             env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0 and "train: resuming from epoch " in resumed.stdout, resumed.stdout
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "history.json").read_text() == (tmp_path / "b" / "history.json").read_text()
    # another model code is another run: its checkpoint is not resumed
    other = write(tmp_path / "other", WITHOUT_ARGUMENT.replace("32", "24").replace("4, 8", "4, 6"))
    again = subprocess.run([sys.executable, str(STEPS / "train.py"), *args[:-4], "--model_code", str(other),
                            "--checkpoint_dir", str(folder), "--model_dir", str(tmp_path / "c"), "--max_epochs", "2"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0 and "train: resuming" not in again.stdout


# -- the whole local pipeline ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("text", [WITH_ARGUMENT, WITHOUT_ARGUMENT], ids=["dropout argument", "Dropout1d, no argument"])
def test_a_team_model_escalates_registers_and_is_scored_on_raw_rows(text, tmp_path, clients):
    from pipelines.local.run import run_local
    from pipelines.settings import Settings

    code = write(tmp_path / "code", text)
    # MaxGap far below what 300 digits rows allow: round 1 overfits, round 2 trains at a stronger level
    report = run_local(
        settings=Settings(model_code=str(code), rounds=2),
        params={"MaxGap": "0.0001", "RegisterBestCandidate": "yes", "MaxEpochs": "40"},
        runs_dir=tmp_path / "runs",
        echo=lambda _: None,
    )
    assert [r["decision"] for r in report["rounds"]] == ["overfit", "candidate"], report.get("failure_reason")
    [run] = run_folders(tmp_path / "runs")
    configs = []
    for round_ in (1, 2):
        archive = next((run / "jobs" / f"TrainRound{round_}").rglob("model.tar.gz"))
        with tarfile.open(archive) as tar:
            configs.append(json.load(tar.extractfile("config.json")))
    assert (
        configs[0]["model"]
        == configs[1]["model"]
        == f"model.py (sha256 {model_code.digest(code.parent, 'model.py', False)[:12]})"
    )
    assert configs[1]["dropout"] > configs[0]["dropout"], "round 2 is stronger"
    [package] = clients["sagemaker"].list_model_packages(ModelPackageGroupName="regula-models")[
        "ModelPackageSummaryList"
    ]
    metadata = clients["sagemaker"].describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["regula:model_code_sha256"] == model_code.digest(code.parent, "model.py", False)
    raw = next(run.rglob("raw_sample.csv"))
    rows = pd.read_csv(raw).head(20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    # the registered candidate, from the registry (the test's moto server), as a team would score it
    scored = regula_here("predict", "--model", package["ModelPackageArn"], "--data", str(tmp_path / "rows.csv"),
                         "--out", str(tmp_path / "out.csv"))  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 20 and set(out["prediction"]) <= set(range(10))


def test_the_readme_example_is_a_model_that_passes_the_contract(tmp_path):
    readme = (REPO / "README.md").read_text()
    block = readme.split("```python\n# my_model.py: regula run --local --model-code my_model.py\n", 1)[1].split("```")[
        0
    ]
    path = write(tmp_path, block, "my_model.py")
    assert model_code.dry_run(path).startswith("my_model.py (sha256 ")


def test_the_example_runs_with_its_one_command(tmp_path, aws):
    """examples/custom_tabular: `regula run --local --model-code examples/custom_tabular/model.py`, one round."""
    result = regula(
        "run", "--local", "--model-code", str(EXAMPLE), "--rounds", "1", "--runs-dir", str(tmp_path / "runs"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads((run_folders(tmp_path / "runs")[0] / "report.json").read_text())
    [round_] = report["rounds"]
    assert round_["decision"] == "register" and report["model_package_arn"]
    assert round_["model"]["name"].startswith("model.py (sha256 ")
    assert round_["model"]["code_sha256"] == model_code.digest(EXAMPLE.parent, "model.py", False)


def test_a_cached_pyc_planted_beside_the_packed_code_is_refused_and_loading_writes_none(tmp_path):
    """Python runs a matching .pyc instead of the source: the sha256 of the source would not guard it."""
    from steps import model as model_module

    folder = packed_model(tmp_path, WITH_ARGUMENT)
    model_module.load(folder)
    model_module.load(folder)  # loading writes no bytecode beside the checked files
    assert sorted(p.name for p in (folder / "code" / "model_code").rglob("*")) == ["model.py"]
    cache = folder / "code" / "model_code" / "__pycache__"
    cache.mkdir()
    (cache / "model.cpython-311.pyc").write_bytes(b"planted")
    with pytest.raises(ModelCodeError, match=r"holds files training did not pack \(__pycache__/model"):
        model_module.load(folder)


def test_a_model_file_that_exits_at_import_and_a_linked_folder_are_refused(tmp_path):
    exits = write(tmp_path, "import sys\nsys.exit(0)\n", "exits.py")
    with pytest.raises(ModelCodeError, match=r"^model code exits.py:2: importing it failed: SystemExit: 0$"):
        model_code.load(exits)
    outside = tmp_path / "outside"
    write(outside, "X = 1\n", "__init__.py")
    folder = tmp_path / "pkg"
    write(folder, WITH_ARGUMENT)
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelCodeError, match="not links"):
        model_code.load(folder)
