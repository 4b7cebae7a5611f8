"""The step scripts that run inside the SageMaker containers.

There they run as plain scripts (`python preprocess.py`) with this folder on the path, and import each other by
bare name (`from defaults import ...`). So that the same modules import from the package too (`steps.parameters`,
`steps.table`, as the pipelines/ code and the tests use them), this folder is put on the path here.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)
