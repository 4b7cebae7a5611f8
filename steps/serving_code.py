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
SERVING_MODULES = ("inference", "model", "table", "table_roles", "table_values")  # inference.py and its imports
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


def _ours() -> dict:
    return {name: module for name, module in sys.modules.items() if name.split(".")[0] == PACKAGE}


def import_artifact(code_dir: Path) -> dict:
    """The artifact's `steps.inference` and the modules it imported, all from `code_dir`, by short name
    (`inference`, `table`, ...). Afterwards sys.path and this process's `steps` modules are as before; the artifact's
    modules keep referring to each other."""
    code_dir = Path(code_dir)
    if not (code_dir / PROGRAM).is_file():
        raise FileNotFoundError(f"{code_dir} holds no {PROGRAM}: not a model artifact of this Regula version")
    saved = _ours()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(code_dir))
    try:
        importlib.import_module(module_name(PROGRAM))
        return {name.partition(".")[2] or name: module for name, module in _ours().items()}
    finally:
        sys.path.remove(str(code_dir))
        for name in _ours():
            del sys.modules[name]
        sys.modules.update(saved)


def import_inference(code_dir: Path):
    """The artifact's `steps.inference` module (`import_artifact`)."""
    return import_artifact(code_dir)["inference"]
