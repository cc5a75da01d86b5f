"""Command line: `python -m autograder COMMAND`, one module per command (each has `register` and `run`).

release -> grade (or, on many machines, grade --shard I/N then merge) -> report / diff -> export / nbgrader-sync /
bundle gradescope / gradescope-run / classroom-template / classroom-payloads.
"""
from __future__ import annotations

import argparse

from autograder import __version__

COMMANDS = ("grade", "merge", "release", "nbgrader_sync", "bundle", "gradescope_run", "classroom_template",
            "classroom_payloads", "report", "diff", "export")


def main(argv=None) -> int:
    from importlib import import_module

    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        import_module(f"autograder.cli.{name}").register(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
