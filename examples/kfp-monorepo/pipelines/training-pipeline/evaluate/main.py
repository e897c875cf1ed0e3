"""Toy evaluation step: a deterministic accuracy from the model's weight."""

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--min-accuracy", type=float, default=0.8)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args()
    model = json.loads(Path(args.model).read_text())
    accuracy = min(1.0, 0.5 + model["weight"])
    verdict = "passed" if accuracy >= args.min_accuracy else "below threshold"
    summary = f"accuracy {accuracy:.3f} ({verdict}, minimum {args.min_accuracy})"
    print(summary)
    Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
    Path(args.summary).write_text(summary)


if __name__ == "__main__":
    main()
