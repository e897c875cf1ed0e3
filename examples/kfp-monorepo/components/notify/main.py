"""Shared notification step: prints the message (a real one would post it somewhere)."""

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--message", required=True)
    args = parser.parse_args()
    print(f"[{args.subject}] {args.message}")


if __name__ == "__main__":
    main()
