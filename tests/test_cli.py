"""The artbias command: help, version, and one-line errors with a non-zero exit."""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gallery.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as done:  # argparse prints the help and exits
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert {"version", "data", "generate", "search", "eval", "classify", "bias", "gallery", "demo"} <= _listed(out)


def _listed(help_text: str) -> set[str]:
    """The command names a --help lists (indented four spaces, first word of the line)."""
    return {line.split()[0] for line in help_text.splitlines() if line.startswith("    ") and line.strip()}


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


def test_eval_subcommands_come_from_their_packages(capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert {"clip", "classifier", "generator"} <= _listed(out), out


def test_demo_serves_the_gallery_it_made(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import gallery.commands
    import gallery.config

    served = []
    monkeypatch.setattr(gallery.config, "load_config", lambda path: SimpleNamespace(name="demo"))
    monkeypatch.setattr(gallery.commands, "_run", lambda config, where, args: SimpleNamespace(failed=0))
    monkeypatch.setattr(gallery.commands, "print_bias", lambda where: None)
    monkeypatch.setattr(gallery.commands, "serve", lambda where, port: served.append((where, port)) or 7)
    monkeypatch.setattr(gallery.commands, "check_port", lambda port: None)
    assert main(["demo", "--gallery", str(tmp_path / "g"), "--port", "8600"]) == 7
    assert served == [(str(tmp_path / "g"), 8600)]
    assert main(["demo", "--gallery", str(tmp_path / "g"), "--no-serve"]) == 0 and len(served) == 1


def test_registering_the_commands_imports_no_torch():
    """`artbias --help` stays fast: every package's commands register without torch."""
    probe = "import sys, gallery.cli; gallery.cli.build_parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", "registering the commands imported torch"


# -- help: every option explained, every default shown, every group with examples -----------------
def _parsers(parser: argparse.ArgumentParser, path: str = ""):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}".strip())


def test_every_option_has_help_and_shows_its_default(monkeypatch):
    from gallery.cli import build_parser

    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside a default
    checked = 0
    for path, parser in _parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = action.option_strings[-1] if action.option_strings else action.dest
            assert action.help, f"artbias {path} {name} has no help"
            default = action.default
            if default is None or default is False or default == argparse.SUPPRESS or default == []:
                continue
            assert f"(default: {default})" in text, f"artbias {path} --help does not show {name}'s default"
            checked += 1
    assert checked > 40


def test_every_group_says_what_it_is_for_with_examples(capsys):
    from gallery.cli import build_parser

    parsers = dict(_parsers(build_parser()))
    for group in ("data", "models", "train", "eval", "gallery", "campaign"):
        parser = parsers[group]
        assert parser.description and not parser.description.endswith(" commands"), group
        examples = [line.strip() for line in (parser.epilog or "").splitlines()[1:]]
        assert 1 <= len(examples) <= 3 and all(e.startswith(f"artbias {group}") for e in examples), group
        with pytest.raises(SystemExit):
            main([group, "--help"])
        assert examples[0] in capsys.readouterr().out


# -- one default gallery; gallery export -----------------------------------------------------------
def _tiny_gallery(root, runs: int):
    from gallery.store import Store, utc_now

    store = Store(root)
    store.migrate()
    with store.write() as con:
        for i in range(runs):
            (store.root / "images").mkdir(exist_ok=True)
            (store.root / "images" / f"{i}.png").write_bytes(b"png")
            con.execute("INSERT INTO runs (run_id, status) VALUES (?, 'done')", [f"r{i}"])
            con.execute("INSERT INTO artworks (artwork_id, run_id, role, rank, image_path, created_at)"
                        " VALUES (?, ?, 'chosen', 0, ?, ?)", [f"r{i}:0", f"r{i}", f"images/{i}.png", utc_now()])
    return store


def test_every_command_defaults_to_one_gallery():
    from gallery.cli import build_parser
    from gallery.report_commands import DEFAULT_GALLERY

    parser = build_parser()
    for argv in (["bias"], ["gallery"], ["demo"], ["campaign", "run", "x.toml"], ["gallery", "export", "--out", "d"]):
        assert parser.parse_args(argv).gallery == DEFAULT_GALLERY, argv


def test_gallery_export_bare_and_with_the_gallery_before_export(tmp_path, monkeypatch, capsys):
    from gallery.report_commands import DEFAULT_GALLERY

    monkeypatch.chdir(tmp_path)
    _tiny_gallery(tmp_path / DEFAULT_GALLERY, runs=1)
    _tiny_gallery(tmp_path / "other", runs=3)
    assert main(["gallery", "export", "--out", "bare"]) == 0
    assert "exported 1 runs" in capsys.readouterr().out
    assert main(["gallery", "--gallery", "other", "export", "--out", "before"]) == 0
    assert main(["gallery", "export", "--gallery", "other", "--out", "after", "--format", "csv"]) == 0
    assert json.loads((tmp_path / "bare" / "export.json").read_text())["rows"]["runs"] == 1
    for out in ("before", "after"):
        assert json.loads((tmp_path / out / "export.json").read_text())["rows"]["runs"] == 3
    assert (tmp_path / "after" / "runs.csv").is_file() and (tmp_path / "after" / "images" / "2.png").is_file()
    assert main(["gallery", "export", "--out", "bare"]) == 2  # an existing export needs --force
    assert "--force" in capsys.readouterr().err
    assert main(["gallery", "export", "--out", "bare", "--force"]) == 0


# -- serving: a busy port, and stopping Streamlit with its parent ----------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_busy_port_is_a_one_line_error_before_serving(tmp_path, monkeypatch, capsys):
    import gallery.report_commands

    _tiny_gallery(tmp_path / "g", runs=1)
    monkeypatch.setattr(gallery.report_commands.subprocess, "Popen", _must_not_start)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["gallery", "--gallery", str(tmp_path / "g"), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing said about serving
    assert len(err.strip().splitlines()) == 1 and f"port {port} is not free" in err and "--port" in err


def _must_not_start(*args, **kwargs):
    raise AssertionError("Streamlit was started on a busy port")


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the child")
def test_stopping_artbias_gallery_stops_streamlit(tmp_path):
    pytest.importorskip("streamlit", reason="streamlit is not installed")
    _tiny_gallery(tmp_path / "g", runs=1)
    port = _free_port()
    parent = subprocess.Popen([sys.executable, "-m", "gallery.cli", "gallery", "--gallery", str(tmp_path / "g"),
                               "--port", str(port), "--address", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 12
        while not _listening(port):
            if parent.poll() is not None or time.monotonic() > deadline:
                parent.kill()
                pytest.skip(f"streamlit could not start here: {parent.communicate()[0][-500:]}")
            time.sleep(0.2)
        children = _children(parent.pid)
        assert children, "no Streamlit child found"
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=10) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 3
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(child) for child in children), "Streamlit outlived artbias gallery"
        assert not _listening(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for child in _children(parent.pid) if parent.poll() is None else []:
            os.kill(child, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
