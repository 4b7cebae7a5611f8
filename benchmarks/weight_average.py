"""The averaged weights against the raw ones: what defaults.AVERAGE_DECAY is measured on.

benchmarks/train_options.py with two variants: train.py at its defaults with `--average_decay 0` (the raw weights,
the reference) and at the default decay, three seeds each, on the real-tables suite and the bundled demo.

    python benchmarks/weight_average.py [--tables demo,wine,...] [--seeds 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from train_options import REPO, TABLES, compare  # noqa: E402

from steps import defaults as d  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "weight_average.json"))
    args = parser.parse_args()
    variants = {"raw": {"average_decay": 0.0}, "averaged": {"average_decay": d.AVERAGE_DECAY}}
    results = compare(args.tables.split(","), variants, args.seeds)
    out = {"decay": d.AVERAGE_DECAY, "seeds": args.seeds, "results": results}
    results_file.write(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
