"""The code a model artifact carries, so that it scores raw rows on its own: which modules, how training packs them,
and how evaluation and `regula predict` import them.

The artifact's `code/` holds the model server (`serve.py`, what the image's `serve` runs) and, beside it, the serving
modules as the package they are here: `code/steps/inference.py`, `model.py` and the table transform. Evaluation and
`regula predict` must run *that* code, not this process's own `steps` package (which may be newer, or another
build): `import_inference` imports the artifact's package in isolation and puts this process's modules back after.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

PACKAGE = "steps"
# inference.py and its imports
SERVING_MODULES = (
    "inference", "inputs", "model", "model_code", "series", "table", "table_roles", "table_values", "cnn",
    "image_decode", "target_encoding", "target_scale", "text",
)  # fmt: skip
SERVER = "serve.py"  # code/serve.py: the image's `serve` runs it
PROGRAM = f"{PACKAGE}/inference.py"  # SAGEMAKER_PROGRAM: the handlers, relative to code/
HERE = Path(__file__).resolve().parent


def pack(code_dir: Path) -> None:
    """Copy the server and the serving modules into `code_dir` (the artifact's code/)."""
    package = code_dir / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / SERVER, code_dir / SERVER)
    for name in ("__init__", "serving_code", *SERVING_MODULES):
        shutil.copy(HERE / f"{name}.py", package / f"{name}.py")


def module_name(program: str) -> str:
    """`steps/inference.py` -> `steps.inference`."""
    return Path(program).with_suffix("").as_posix().replace("/", ".")


def _inside(module, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve().is_relative_to(folder)


def import_artifact(code_dir: Path) -> dict:
    """The artifact's `steps.inference` and the modules it imported, all from `code_dir`, by short name
    (`inference`, `table`, ...); the artifact's modules keep referring to each other. Afterwards sys.path and
    sys.modules are as before: this process's `steps` modules are back, and whatever was imported from `code_dir` is
    gone. An artifact packed before the package layout (code/inference.py with its siblings, imported by their bare
    names) loads the same way. ImportError when a module the code imports did not come from `code_dir`."""
    code_dir = Path(code_dir).resolve()
    if (code_dir / PACKAGE / "__init__.py").is_file() and (code_dir / PROGRAM).is_file():
        entry, clashes = module_name(PROGRAM), lambda name: name.split(".")[0] == PACKAGE
    elif (code_dir / "inference.py").is_file():  # packed before the package layout
        entry, clashes = "inference", lambda name: name in SERVING_MODULES
    else:
        raise FileNotFoundError(f"{code_dir} holds no {PROGRAM}: not a Regula model artifact")
    saved = {name: module for name, module in sys.modules.items() if clashes(name)}
    for name in saved:
        del sys.modules[name]
    before = set(sys.modules)
    sys.path.insert(0, str(code_dir))
    try:
        importlib.import_module(entry)
        loaded = {name: sys.modules[name] for name in set(sys.modules) - before if clashes(name)}
        foreign = sorted(name for name, module in loaded.items() if not _inside(module, code_dir))
        if foreign:
            raise ImportError(f"the serving code in {code_dir} is incomplete: {', '.join(foreign)} came from elsewhere")
        return {name.partition(".")[2] or name: module for name, module in loaded.items()}
    finally:
        sys.path.remove(str(code_dir))
        for name in set(sys.modules) - before:
            if clashes(name) or _inside(sys.modules[name], code_dir):
                del sys.modules[name]
        sys.modules.update(saved)


def import_inference(code_dir: Path):
    """The artifact's `steps.inference` module (`import_artifact`)."""
    return import_artifact(code_dir)["inference"]
