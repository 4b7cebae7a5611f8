"""The model contract: the PyTorch model a round trains, Regula's own or the team's, and what Regula asks of it.

A team's model is a Python file (or a folder with `model.py`) that defines

    build_model(spec, dropout) -> torch.nn.Module     # or build_model(spec): dropout is then set on its modules

and optionally `loss(output, target) -> tensor` (default: the problem type's, steps/objective.py) and
`l1_parameters(model) -> iterable of parameters` (default: every parameter with 2 or more dimensions). `spec` is a
ModelSpec: n_features, n_outputs, problem_type, input_kind, hidden (HiddenLayers, for models that want it) and the
input kind's own shape in `extra`. Regula owns everything else: the optimizer (AdamW, L2 as its weight decay), the
L1 term, early stopping, the weights' average, checkpoints, AMP, torch.distributed, metrics and the ladder. The
ladder's dropout reaches the model twice: as `dropout`, and as `p` of every dropout module it holds (so a model that
ignores the argument is still regularized). A model without dropout modules is trained with L1 and L2 only, and
the log and the report say so.

The code travels with the model: training packs it into the artifact's code/model_code/, and serving imports it from
there alone, after checking its files' sha256 against the one training recorded (`load_packed`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import shutil
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

BUILTIN = "builtin:mlp"  # the model Regula trains unless the pipeline was rendered with --model-code
PACKED = "model_code"  # the folder in the training job's code and in the artifact's code/ that holds the team's code
FOLDER_ENTRY = "model.py"  # the entry of a folder of model code
MAX_FILES, MAX_BYTES = 200, 20 * 2**20  # model code is code: a data set uploaded by mistake is refused
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
CHECK_ROWS = 4  # the example batch the model is checked on before the first epoch
# File names of model code: they become S3 keys and, for the entry, a hyperparameter that SageMaker's training driver
# writes unescaped into a shell-sourced file (FACTS.md): letters, digits, '_', '-', '.' only, no dot-files
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class ModelCodeError(ValueError):
    """The model code breaks the contract: one line naming the file and line where it does."""


@dataclass(frozen=True)
class ModelSpec:
    """What build_model is told about the data: also saved in the artifact, so serving builds the same model."""

    n_features: int
    n_outputs: int
    problem_type: str  # "classification" (n_outputs class logits) or "regression" (one standardized target)
    input_kind: str = "table"  # what a batch is: steps/inputs.py
    hidden: tuple[int, ...] = ()  # HiddenLayers: the built-in MLP's layers; a team's model may use or ignore it
    extra: dict = field(default_factory=dict)  # the input kind's own shape (image size, vocabulary, window)

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        return cls(**{**values, "hidden": tuple(values.get("hidden", ()))})


@dataclass(frozen=True)
class ModelCode:
    """Where build_model comes from: the built-in MLP, or a team's module and the sha256 of its files."""

    name: str  # BUILTIN, or the entry's path relative to the model code's root
    module: ModuleType
    sha256: str | None = None
    root: Path | None = None  # the folder the code is in (packed into the artifact as it is)
    folder: bool = False  # the code is the whole folder (a package whose entry is model.py), else the entry alone

    def describe(self, input_kind: str = "table") -> str:
        if self.name == BUILTIN:  # steps/model.py build_model: the CNN for images, averaged MLPs for series
            return {"image": "Regula's CNN", "series": "Regula's 5 averaged MLPs"}.get(input_kind, "Regula's MLP")
        return f"{self.name} (sha256 {self.sha256[:12]})"


# -- finding and importing the code -----------------------------------------------------------------------------


def code_files(root: Path, entry: str, folder: bool) -> list[Path]:
    """The files of the model code: the entry alone when it is a file, every file of the folder when it is a folder
    (its entry is model.py); ModelCodeError when they are not plain code of a sane size."""
    if not folder:
        files = [root / entry]
    else:
        links = [p for p in root.rglob("*") if p.is_symlink()]  # rglob does not follow a linked folder: say so
        if links:
            raise ModelCodeError(f"model code may hold only regular files and folders, not links: {links[0]}")
        files = sorted(p for p in root.rglob("*") if "__pycache__" not in p.parts and not p.is_dir())
    unsafe = [p for p in files if not all(SAFE_NAME.fullmatch(part) for part in p.relative_to(root).parts)]
    if unsafe:
        raise ModelCodeError(
            f"model code file names may hold only letters, digits, '_', '-' and '.': {unsafe[0].relative_to(root)}"
        )
    links = [p for p in files if p.is_symlink() or not p.is_file()]
    if links:
        raise ModelCodeError(f"model code may hold only regular files, not links or devices: {links[0]}")
    if len(files) > MAX_FILES or sum(p.stat().st_size for p in files) > MAX_BYTES:
        raise ModelCodeError(f"model code {root} holds more than {MAX_FILES} files or {MAX_BYTES >> 20} MiB")
    return files


def digest(root: Path, entry: str, folder: bool) -> str:
    """sha256 over the code's file names and bytes: what the report, the registry and the checkpoints record."""
    hasher = hashlib.sha256(entry.encode() + b"\0" + str(folder).encode() + b"\0")
    for path in code_files(root, entry, folder):
        hasher.update(path.relative_to(root).as_posix().encode() + b"\0")
        hasher.update(hashlib.sha256(path.read_bytes()).digest())
    return hasher.hexdigest()


def locate(path: str | Path) -> tuple[Path, str, bool]:
    """(root folder, entry relative to it, whether the code is the whole folder) of a model code file or folder;
    ModelCodeError when there is none."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".py":
            raise ModelCodeError(f"model code must be a .py file or a folder with {FOLDER_ENTRY}, got {path}")
        resolved = path.resolve()  # a linked entry: the file it names, under its own name
        return resolved.parent, resolved.name, False
    if path.is_dir():
        if not (path / FOLDER_ENTRY).is_file():
            raise ModelCodeError(f"model code folder {path} has no {FOLDER_ENTRY}")
        return path.resolve(), FOLDER_ENTRY, True
    raise ModelCodeError(f"model code {path} does not exist")


def _where(error: BaseException, root: Path) -> str:
    """'file.py:12' of the innermost frame of `error` inside the model code, else ''."""
    if isinstance(error, SyntaxError) and error.filename and _is_under(Path(error.filename), root):
        return f"{Path(error.filename).resolve().relative_to(root)}:{error.lineno}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_under(Path(f.filename), root)]
    if not frames:
        return ""
    return f"{Path(frames[-1].filename).resolve().relative_to(root)}:{frames[-1].lineno}"


def _is_under(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _fail(what: str, error: BaseException, root: Path | None, entry: str) -> ModelCodeError:
    where = _where(error, root) if root else ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return ModelCodeError(f"model code {where or entry}: {what}: {type(error).__name__}{': ' + text if text else ''}")


def import_code(root: Path, entry: str, folder: bool) -> ModelCode:
    """Import `entry` (a file in `root`, or `model.py` of the package `root` when `folder`) under a name of its own,
    so it can neither shadow nor be shadowed by any installed module; ModelCodeError (file and line) when importing
    fails."""
    root = Path(root).resolve()
    file = root / entry
    if Path(entry).is_absolute() or not _is_under(file, root) or not file.is_file():
        raise ModelCodeError(f"model code entry {entry} is not a file inside {root}")
    sha256 = digest(root, entry, folder)
    name = f"regula_model_code_{sha256[:16]}"
    # a folder is a package, so that its modules import each other relatively (from . import blocks)
    search = [str(root)] if folder else None
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    before, writes_bytecode = set(sys.modules), sys.dont_write_bytecode
    sys.modules[name] = module
    sys.dont_write_bytecode = True  # no __pycache__ beside the code: an artifact's folder holds its checked files only
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # SystemExit too: a model file that exits at import is a broken model file
        raise _fail("importing it failed", error, root, entry) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode
        for loaded in set(sys.modules) - before:  # its own modules live on through `module`, not by name
            if loaded == name or loaded.startswith(name + "."):
                del sys.modules[loaded]
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise ModelCodeError(f"model code {entry} defines no build_model(spec, dropout) function")
    if not arguments_taken(build):
        line = inspect.getsourcelines(build)[1] if inspect.isfunction(build) else "?"
        raise ModelCodeError(
            f"model code {entry}:{line}: build_model must take (spec, dropout) or (spec), "
            f"not ({', '.join(inspect.signature(build).parameters)})"
        )
    for hook in ("loss", "l1_parameters"):
        if hasattr(module, hook) and not callable(getattr(module, hook)):
            raise ModelCodeError(f"model code {entry}: {hook} must be a function")
    return ModelCode(name=entry, module=module, sha256=sha256, root=root, folder=folder)


def arguments_taken(function) -> int:
    """2 when build_model can be called as (spec, dropout), 1 when only as (spec), 0 when as neither."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return 0
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    keyword_only = [p for p in parameters if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if keyword_only or len(required) > 2:
        return 0
    if variadic or len(positional) >= 2:
        return 2
    return 1 if positional else 0


def builtin() -> ModelCode:
    from steps import model

    return ModelCode(name=BUILTIN, module=model)


def load(path: str | Path | None) -> ModelCode:
    """The model code at `path` (a file or folder), or the built-in MLP when there is none."""
    if not path:
        return builtin()
    return import_code(*locate(path))


# -- building, checking and regularizing the model --------------------------------------------------------------


def build(code: ModelCode, spec: ModelSpec, dropout: float) -> nn.Module:
    """The model for `spec` at the round's dropout, with `p` of every dropout module set to it."""
    takes_dropout = arguments_taken(code.module.build_model) == 2
    try:
        model = code.module.build_model(spec, dropout) if takes_dropout else code.module.build_model(spec)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        raise _fail("build_model failed", error, code.root, code.name) from None
    if not isinstance(model, nn.Module):
        raise ModelCodeError(f"model code {code.name}: build_model returned {type(model).__name__}, not an nn.Module")
    set_dropout(model, dropout)
    return model


def set_dropout(model: nn.Module, p: float) -> int:
    """Set `p` on every dropout module of `model`; how many there are."""
    modules = [m for m in model.modules() if isinstance(m, DROPOUT_TYPES)]
    for module in modules:
        module.p = p
    return len(modules)


def dropout_modules(model: nn.Module) -> int:
    return sum(isinstance(m, DROPOUT_TYPES) for m in model.modules())


def l1_parameters(code: ModelCode, model: nn.Module) -> list[nn.Parameter]:
    """The parameters the L1 term penalizes: the code's choice, else every parameter of 2 or more dimensions (the
    weights of linear, convolution and embedding layers; not biases or norms)."""
    hook = getattr(code.module, "l1_parameters", None)
    if hook is None:
        return [p for p in model.parameters() if p.dim() >= 2]
    try:
        chosen = list(hook(model))
    except Exception as error:
        raise _fail("l1_parameters failed", error, code.root, code.name) from None
    own = {id(p) for p in model.parameters()}
    if not all(isinstance(p, torch.Tensor) and id(p) in own for p in chosen):
        raise ModelCodeError(f"model code {code.name}: l1_parameters must return parameters of the model")
    return chosen


def feature_usage(model: nn.Module) -> dict | None:
    """What the model says of the input features it still uses (its `feature_usage()`, e.g. the built-in text
    model's n-grams with a weight above a tolerance), or None where it says nothing."""
    usage = getattr(model, "feature_usage", None)
    return usage() if callable(usage) else None


def proximal_parameters(model: nn.Module) -> dict[nn.Parameter, float]:
    """{parameter: scale of the round's L1} the model marks for L1 as a proximal step (its
    `l1_proximal_parameters()`: steps/proximal.py); they carry no L1 in the loss. Empty unless it marks some."""
    marked = getattr(model, "l1_proximal_parameters", None)
    return dict(marked()) if callable(marked) else {}


def loss_function(code: ModelCode):
    """The code's loss(output, target), or None for the problem type's."""
    return getattr(code.module, "loss", None)


def check(code: ModelCode, model: nn.Module, spec: ModelSpec, example, device) -> None:
    """Before the first epoch: the model's parameters are finite and trainable, and a forward pass on `example` (a
    batch of real training inputs) gives one row of n_outputs per input row; ModelCodeError names what is wrong."""
    parameters = list(model.parameters())
    if not any(p.requires_grad for p in parameters):
        raise ModelCodeError(f"model code {code.name}: the model has no trainable parameters")
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise ModelCodeError(f"model code {code.name}: parameters are not finite after building: {', '.join(bad[:5])}")
    rows = len(next(iter(example.values())) if isinstance(example, dict) else example)
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as error:
        raise _fail("the forward pass failed", error, code.root, code.name) from None
    finally:
        model.train()
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows, spec.n_outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        what = "class logits" if spec.problem_type == "classification" else "one value per row"
        raise ModelCodeError(
            f"model code {code.name}: the model returns {shape} for a batch of {rows}, expected "
            f"({rows}, {spec.n_outputs}): {what}"
        )
    if not torch.isfinite(out.float()).all():
        raise ModelCodeError(f"model code {code.name}: the model's output is not finite on real training rows")
    del device


def example_inputs(spec: ModelSpec, rows: int = CHECK_ROWS) -> torch.Tensor:
    """A dummy batch for `spec` (`regula render --model-code` builds the model on it once)."""
    shape = spec.extra.get("input_shape")
    return torch.zeros((rows, *shape) if shape else (rows, spec.n_features))


def dry_run(path: str | Path, spec: ModelSpec | None = None) -> str:
    """Import the code at `path`, build and check its model on a dummy spec: what `regula render --model-code` does
    before anything is uploaded. Returns the code's description."""
    code = load(path)
    spec = spec or ModelSpec(n_features=8, n_outputs=3, problem_type="classification", hidden=(16,))
    model = build(code, spec, 0.1)
    check(code, model, spec, example_inputs(spec), "cpu")
    return code.describe()


# -- the artifact ---------------------------------------------------------------------------------------------


def pack(code: ModelCode, code_dir: Path) -> dict:
    """Copy a team's code into the artifact's code/model_code/; the record config.json keeps of it."""
    if code.name == BUILTIN:
        return {"name": BUILTIN}
    target = code_dir / PACKED
    if target.exists():
        shutil.rmtree(target)
    for path in code_files(code.root, code.name, code.folder):
        destination = target / path.relative_to(code.root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return {"name": code.name, "sha256": code.sha256, "folder": code.folder}


def load_packed(record: dict, code_dir: Path) -> ModelCode:
    """The model code an artifact's config records, imported from its code/model_code/ only: ModelCodeError when the
    files there are not the ones training packed (another sha256), or the entry leaves that folder."""
    root = (Path(code_dir) / PACKED).resolve()
    entry = str(record["name"])
    if not root.is_dir() or not _is_under(root / entry, root) or Path(entry).is_absolute():
        raise ModelCodeError(f"the artifact's model code {entry!r} is not inside its {PACKED}/ folder")
    folder = bool(record.get("folder"))
    everything = {p for p in root.rglob("*") if not p.is_dir() or p.is_symlink()}
    if everything != set(code_files(root, entry, True if folder else False)) and not (
        not folder and everything == {root / entry}
    ):
        strays = sorted(p.relative_to(root).as_posix() for p in everything - {root / entry})
        raise ModelCodeError(
            f"the artifact's model code folder holds files training did not pack ({', '.join(strays[:3])}): "
            "refusing to run it (a cached .pyc would run instead of the checked source)"
        )
    found = digest(root, entry, folder)
    if found != record.get("sha256"):
        raise ModelCodeError(
            f"the artifact's model code is not the code it was trained with (sha256 {found[:12]}, "
            f"recorded {str(record.get('sha256'))[:12]}): refusing to run it"
        )
    return import_code(root, entry, folder)
