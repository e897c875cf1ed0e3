"""Toy training step: a deterministic 'model' computed from the hyperparameters."""

import argparse

from utils.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    weight = round(args.epochs * args.learning_rate * 100 / args.batch_size, 6)
    print(f"training on {args.dataset} for {args.epochs} epoch(s): weight={weight}")
    write_json(args.model, {"dataset": args.dataset, "epochs": args.epochs, "weight": weight})


if __name__ == "__main__":
    main()
