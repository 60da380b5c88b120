"""The artbias command: help, version, and one-line errors with a non-zero exit."""

import json
import subprocess
import sys

from gallery.cli import main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as done:
        assert done.code == 0
    out = capsys.readouterr().out
    assert "version" in out


def test_version_all_reports_stack(capsys):
    assert main(["version", "--all"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["artbias"]
    assert found["torch"]
    assert found["python"].startswith("3.")


def test_unknown_command_is_one_line_error(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("artbias: error:")
    assert "no-such-command" in err[0]


def test_bad_option_is_one_line_error(capsys):
    assert main(["version", "--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bogus" in err[0]


def test_console_script_exit_code():
    done = subprocess.run(
        [sys.executable, "-m", "gallery.cli", "nothing"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "artbias: error:" in done.stderr


def test_a_command_can_also_hold_subcommands(capsys):
    import argparse

    from gallery.cli import Commands, _Parser

    root = _Parser(prog="artbias")
    commands = Commands(root)
    commands.add("shelf list", lambda args: 3, "list the shelf")
    shelf = commands.add_group("shelf", lambda args: 4, "show the shelf")
    shelf.add_argument("--width", type=int, default=1)
    assert root.parse_args(["shelf", "--width", "2"]).handler(argparse.Namespace()) == 4
    assert root.parse_args(["shelf", "list"]).handler(argparse.Namespace()) == 3
    root.print_help()
    assert "show the shelf" in capsys.readouterr().out
