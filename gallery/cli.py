"""The ``artbias`` command: one entry point whose subcommands each package registers.

Every package that offers commands has a ``commands`` module with ``register(commands)``;
it adds its subcommands by path ("data world", "train gan", ...). They are imported below
and registered in pipeline order (data -> generators -> search -> classifier -> gallery).
Registration must stay light (no torch import): heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence

import classifier.commands
import data.commands
import data.weights.commands
import gallery.annotate_commands
import gallery.commands
import gallery.report_commands
import generators.commands
import search.commands
from data.errors import ArtbiasError
from data.validation import add_allow_large, lifted_limits, printable

# The modules that contribute subcommands, in pipeline order.
COMMAND_MODULES = (
    data.commands,
    data.weights.commands,
    generators.commands,
    search.commands,
    classifier.commands,
    gallery.report_commands,
    gallery.annotate_commands,
    gallery.commands,
)

Handler = Callable[[argparse.Namespace], int | None]
# Commands that take no sizes, so no --allow-large (data.validation.Limits).
WITHOUT_LIMITS = ("version", "models")


class ArgumentError(ArtbiasError):
    """A command-line argument argparse rejected."""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each option's default shown, and the description's and epilog's
    line breaks kept (so examples stay one per line)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if "%(default)" in help or not shows_default(action):
            return help
        return f"{help} (default: %(default)s)" if help else "(default: %(default)s)"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        def fill(line: str) -> str:
            if line[:1].isspace():  # an example: kept whole, so it can be copied
                return indent + line
            return textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)

        return "\n".join(fill(line) for line in text.splitlines())


def shows_default(action: argparse.Action) -> bool:
    """Whether an option's help shows its default: not for None, False or an empty list."""
    default = action.default
    if default is None or default is False or (isinstance(default, str) and default == argparse.SUPPRESS):
        return False
    return not (isinstance(default, list | tuple) and not default)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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

    def describe(self, path: str, help: str, examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        """A group's one-line description (its line in the parent's --help too) and examples."""
        self._group(path)
        parent, _, name = path.rpartition(" ")
        for choice in self._groups[parent]._choices_actions:  # the line in the parent's --help
            if choice.dest == name:
                choice.help = help
        parser = self._group_parsers[path]
        parser.description = help
        if examples:
            parser.epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
        return parser

    def add_group(self, path: str, handler: Handler, help: str,
                  examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        """A command that also has subcommands (``artbias gallery`` and ``artbias gallery export``)."""
        parser = self.describe(path, help, examples)
        parser.set_defaults(handler=handler)
        return parser

    def add(self, path: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parent, _, name = path.rpartition(" ")
        parser = self._group(parent).add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        if path.split(" ")[0] not in WITHOUT_LIMITS:
            add_allow_large(parser)  # every command that takes sizes (data.validation.Limits)
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
    for module in COMMAND_MODULES:
        module.register(commands)
    # Groups that several packages fill; each package describes the groups it owns.
    commands.describe("train", "train a generator, the starter CLIP or a scene classifier on a dataset", [
        "artbias train gan --arch dcgan --data worlds/skewed --out models/dcgan",
        "artbias train classifier --arch resnet-small --data worlds/balanced --out models/classifier",
    ])
    commands.describe("eval", "measure a model: CLIP's zero-shot accuracy, a classifier's accuracy, "
                      "a generator's unguided class mix", [
        "artbias eval clip --model clip-world",
        "artbias eval classifier --model classifier-world --data worlds/fresh",
        "artbias eval generator --generator dcgan-world",
    ])
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with lifted_limits(getattr(args, "allow_large", False)):
            code = args.handler(args)
    except ArtbiasError as error:
        # Control characters from user input (ESC, BEL...) are shown escaped, never sent to the terminal.
        lines = [printable(line) for line in str(error).splitlines()] or [type(error).__name__]
        print("artbias: error: " + "\n".join(lines), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("artbias: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
