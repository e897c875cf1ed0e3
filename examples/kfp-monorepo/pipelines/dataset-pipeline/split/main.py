"""Toy split step: ids 0..99 shuffled with the seed, cut at the test fraction."""

import argparse
import json
import random
from pathlib import Path


def _write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--test-data", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args()
    ids = list(range(100))
    random.Random(args.seed).shuffle(ids)
    cut = int(len(ids) * args.test_fraction)
    _write(args.test_data, json.dumps(ids[:cut]))
    _write(args.train_data, json.dumps(ids[cut:]))
    summary = f"{args.source}: {len(ids) - cut} train / {cut} test rows"
    print(summary)
    _write(args.summary, summary)


if __name__ == "__main__":
    main()
