"""`python -m pipelines.cli`: the `regula` command."""

import sys

from pipelines.cli import main

sys.exit(main())
