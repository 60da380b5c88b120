"""The ``artbias`` command: one entry point whose subcommands each package registers.

Every package that offers commands has a ``commands`` module with ``register(commands)``;
it adds its subcommands by path ("data world", "train gan", ...). Registration must stay
light (no torch import): heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from data.errors import ArtbiasError

# Modules that contribute subcommands, in pipeline order (data -> ... -> gallery).
COMMAND_MODULES: tuple[str, ...] = (
    "data.commands",
    "data.weights.commands",
    "generators.commands",
    "search.commands",
    "classifier.commands",
    "gallery.report_commands",
    "gallery.commands",
)

Handler = Callable[[argparse.Namespace], int | None]


class ArgumentError(ArtbiasError):
    """A command-line argument argparse rejected."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage and exits; we want one clear line and exit code 2.
    def error(self, message: str):  # type: ignore[override]
        command = self.prog.removeprefix("artbias").strip()
        raise ArgumentError(f"{command}: {message}" if command else message)


class Commands:
    """Adds subcommands to the root parser by space-separated path, creating groups on demand."""

    def __init__(self, root: argparse.ArgumentParser):
        self._groups: dict[str, argparse._SubParsersAction] = {
            "": root.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
        }
        self._group_parsers: dict[str, argparse.ArgumentParser] = {"": root}

    def _group(self, path: str) -> argparse._SubParsersAction:
        if path not in self._groups:
            parent, _, name = path.rpartition(" ")
            parser = self._group(parent).add_parser(name, help=f"{name} commands")
            parser.set_defaults(handler=_missing_subcommand(parser))
            self._group_parsers[path] = parser
            self._groups[path] = parser.add_subparsers(metavar="COMMAND", parser_class=_Parser)
        return self._groups[path]

    def add_group(self, path: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        """A command that also has subcommands (``artbias gallery`` and ``artbias gallery export``)."""
        self._group(path)
        parent, _, name = path.rpartition(" ")
        for choice in self._groups[parent]._choices_actions:  # the line in the parent's --help
            if choice.dest == name:
                choice.help = help
        parser = self._group_parsers[path]
        parser.description = help
        parser.set_defaults(handler=handler)
        return parser

    def add(self, path: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parent, _, name = path.rpartition(" ")
        parser = self._group(parent).add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        return parser


def _missing_subcommand(parser: argparse.ArgumentParser) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return handler


def _version(args: argparse.Namespace) -> int:
    from data.provenance import versions

    found = versions()
    if args.all:
        print(json.dumps(found, indent=2))
    else:
        print(f"artbias {found['artbias']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    root = _Parser(
        prog="artbias",
        description="CLIP-guided artwork generation and generator bias study.",
    )
    root.set_defaults(handler=_missing_subcommand(root))
    commands = Commands(root)
    version = commands.add("version", _version, "print the artbias version")
    version.add_argument("--all", action="store_true", help="also the versions of the stack")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code = args.handler(args)
    except ArtbiasError as error:
        print(f"artbias: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("artbias: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
