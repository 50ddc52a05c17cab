"""``python -m benchmarks [word ...] [--json FILE]``: run the benchmark modules, print one table."""

from __future__ import annotations

import argparse
import json
import sys

from . import discover, format_table, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("patterns", nargs="*", help="run only modules whose name contains one")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(discover(args.patterns)))
        return 0
    rows = run_all(args.patterns)
    summaries = [row.pop("summary") for row in rows if "summary" in row]
    print(format_table(rows))
    for line in summaries:  # a module's one-line conclusions come last
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1, default=str)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
