"""The averaged weights against the raw ones: what defaults.AVERAGE_DECAY is measured on.

benchmarks/train_options.py with two variants: train.py at its defaults (the averaged weights, the reference) and
with `--average_decay 0` (the raw weights), on several split seeds, decided on validation (benchmarks/README.md).

    python benchmarks/weight_average.py [--tables demo,wine,...] [--split-seeds 1,2,3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from train_options import REPO, TUNING, compare, decide  # noqa: E402

from steps import defaults as d  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TUNING), help="default: the suite's tuning tables and the demo")
    parser.add_argument("--split-seeds", default="1,2,3")
    parser.add_argument("--seeds", type=int, default=1, help="initialisation seeds per split")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "weight_average.json"))
    args = parser.parse_args()
    # the reference is the product's default: a change needs a variant that is better on validation
    variants = {"averaged (default)": {"average_decay": d.AVERAGE_DECAY}, "raw": {"average_decay": 0.0}}
    split_seeds = [int(s) for s in args.split_seeds.split(",")]
    results = compare(args.tables.split(","), variants, split_seeds, args.seeds)
    decision = decide(results, list(variants))
    print(json.dumps(decision))
    out = {"decay": d.AVERAGE_DECAY, "split_seeds": split_seeds, "seeds": args.seeds, "decision": decision}
    out["results"] = results
    results_file.write(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
