"""``iaa-desktop``: opens the GUI by default; headless subcommands for everything else.

Each subcommand lives in its own module under ``iaa_desktop.cli`` and exposes
``add_parser(subparsers)`` (which registers it and sets ``func``) and a
``run(args) -> int`` exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from iaa_desktop._version import __version__

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("info", "qa", "demo", "metrics", "aggregate", "report", "export-training-set",
            "export-reviewed", "review", "finetune-compare", "train-grid")


def build_parser() -> tuple[argparse.ArgumentParser, set[str]]:
    """The argument parser and the names of the subcommands it knows."""
    parser = argparse.ArgumentParser(
        prog="iaa-desktop",
        description=(
            "Inter-annotator agreement in medical image segmentation. With no "
            "subcommand, opens the desktop application (on PATH if given)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"iaa-desktop {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"iaa_desktop.cli.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # subcommand not built yet
        module.add_parser(sub)
    return parser, set(sub.choices)


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iaa-desktop", description="Open the desktop application.")
    parser.add_argument("path", nargs="?",
                        help="dataset folder (default: the last one opened, else the demo)")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="open the dataset (the demo when none is given), select the lesion with the "
                             "lowest IAA, save the window to PNG and exit (works offscreen)")
    return parser


def _is_gui_call(argv: list[str], commands: set[str]) -> bool:
    """`iaa-desktop`, `iaa-desktop PATH` and `iaa-desktop [PATH] --screenshot PNG` open the GUI."""
    if not argv:
        return True
    if argv[0] == "--screenshot":
        return True
    return argv[0] not in commands and not argv[0].startswith("-")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    if _is_gui_call(argv, commands):
        from iaa_desktop.cli.gui import launch_gui

        gui_args = _gui_parser().parse_args(argv)
        return launch_gui(gui_args.path, screenshot=gui_args.screenshot)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)
