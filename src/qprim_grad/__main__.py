"""``qprim-grad`` command line (also ``python -m qprim_grad``).

``qprim-grad`` without a subcommand prints the help and the list of subcommands.
``qprim-grad plugins`` prints the installed gradient methods and optimizers (name, group,
object path, package, and whether it loads; a broken plugin is also named in a warning).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from . import __version__, plugins

__all__ = ["main"]


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _plugins(args: argparse.Namespace) -> int:
    group = {
        "methods": plugins.GRADIENT_METHODS,
        "metrics": plugins.METRIC_METHODS,
        "optimizers": plugins.OPTIMIZERS,
    }.get(args.group)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", plugins.PluginWarning)
        found = plugins.list_plugins(group, check=True)
    rows: list[tuple[str, ...]] = [("name", "group", "object", "package", "status")]
    for info in found:
        status = "ok" if info.error is None else "broken"
        rows.append((info.name, info.group, info.value, info.package, status))
    print(_table(rows))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return 1 if args.strict and any(info.error for info in found) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="qprim-grad",
        description="Gradients as Qiskit V2 primitives.",
        epilog="Run 'qprim-grad COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"qprim-grad {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    listing = commands.add_parser(
        "plugins",
        help="list installed gradient methods and optimizers",
        description="List the installed gradient methods and optimizers (entry points).",
    )
    listing.add_argument(
        "--group", choices=("methods", "metrics", "optimizers"), help="only this entry-point group"
    )
    listing.add_argument(
        "--strict", action="store_true", help="exit with status 1 if a plugin is broken"
    )
    listing.set_defaults(handler=_plugins)
    args = parser.parse_args(argv)
    if args.command is None:  # no subcommand: say what there is instead of an error
        parser.print_help()
        return 0
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
