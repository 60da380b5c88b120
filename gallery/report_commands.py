"""``artbias bias`` (the bias report) and ``artbias gallery`` (serve the Streamlit app).

Registration stays light: the statistics stack and Streamlit load inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app" / "app.py"
# The one default gallery of every command (bias, gallery, gallery export, demo, campaign run):
# the folder `artbias demo` fills, so the bare commands find what the demo made.
DEFAULT_GALLERY = "gallery-demo"
DEFAULT_PORT = 8501
STOP_TIMEOUT_S = 5.0


def register(commands) -> None:
    bias = commands.add("bias", _bias, "a gallery's category bias per generator and prompt")
    bias.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")
    bias.add_argument("--labeller", help="labeller to report on (default: the trained classifier)")
    bias.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    bias.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="[GENERATOR=]FILE",
        help="reference composition JSON ({class: weight} or a training.json); without "
        "GENERATOR= it applies to every generator (default: each generator's training.json)",
    )
    bias.add_argument("--seed", type=int, default=0, help="bootstrap and Monte-Carlo seed")
    bias.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    _register_serve(commands)


def _register_serve(commands) -> None:
    # `artbias gallery` serves the app while `artbias gallery export` (gallery.commands) is a
    # subcommand of the same word, so the options go on the "gallery" group's own parser.
    parser = commands.add_group(
        "gallery", _serve, "serve a gallery's artworks in the read-only Streamlit app, or export them",
        [
            "artbias gallery --gallery galleries/mine # serves it (default ./gallery-demo)",
            "artbias gallery --kiosk --interval 10    # the exhibition slideshow, full screen",
            "artbias gallery export --out demo-export # tables, images, dataset card",
        ],
    )
    parser.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to serve on")
    parser.add_argument("--address", default=None, help="address to bind (default: Streamlit's, every interface)")
    parser.add_argument("--kiosk", action="store_true",
                        help="exhibition kiosk: only the full-screen slideshow, no Streamlit menu or toolbar "
                             "(see docs/kiosk.md)")
    parser.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                        help="with --kiosk: seconds per slide, 2-300 (default: 8)")


def _bias(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from data.validation import check_limit, check_seed
    from gallery.bias import gallery_bias, render

    if args.resamples < 100:
        raise ConfigError(f"--resamples must be at least 100, got {args.resamples}")
    check_limit("resamples", args.resamples, "--resamples")
    check_seed(args.seed)
    bias = gallery_bias(
        args.gallery,
        labeller=args.labeller,
        references=args.reference,
        seed=args.seed,
        n_resamples=args.resamples,
    )
    print(terminal_text(render(bias, args.format)))
    return 0


def terminal_text(text: str) -> str:
    """A report for the terminal: stored text (prompts, names) never sends control
    characters (ESC, BEL...) to it; each shows escaped, line by line."""
    from data.validation import printable

    return "\n".join(printable(line) for line in text.split("\n"))


def streamlit_command(gallery: str | Path, port: int, address: str | None = None, *,
                      kiosk: bool = False, interval: float | None = None) -> list[str]:
    """The ``streamlit run`` command line for the app (headless: no browser is opened).

    ``kiosk``: the app shows only the exhibition (``--kiosk`` after ``--``), on the dark
    theme, with no toolbar or menu at all (``minimal``) and no page navigation."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        # Visitors see a plain message for an error, never its traceback, and no developer menu.
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    if kiosk:
        command[command.index("--client.toolbarMode") + 1] = "minimal"
        command += ["--client.showSidebarNavigation", "false", "--theme.base", "dark"]
    if address:
        command += ["--server.address", address]
    app_args = ["--gallery", str(Path(gallery).resolve())]
    if kiosk:
        app_args.append("--kiosk")
        if interval is not None:
            app_args += ["--interval", f"{interval:g}"]
    return command + ["--", *app_args]


def _serve(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from gallery.app.kiosk import INTERVAL_RANGE_S

    if args.interval is not None:
        low, high = INTERVAL_RANGE_S
        if not args.kiosk:
            raise ConfigError("--interval is the kiosk's seconds per slide: give --kiosk too")
        if not low <= args.interval <= high:
            raise ConfigError(f"--interval must be {low:g}-{high:g} seconds, got {args.interval:g}")
    return serve(args.gallery, args.port, args.address, kiosk=args.kiosk, interval=args.interval)


def check_port(port: int, address: str | None = None) -> None:
    """A clear error when ``port`` is out of range or already taken (a bind test, with the
    SO_REUSEADDR a web server uses, so only a live listener counts as busy)."""
    from data.errors import ConfigError

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if address and ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address or "", port))
        except OSError as error:
            where = f"{address}:{port}" if address else f"port {port}"
            raise ConfigError(f"{where} is not free ({error.strerror or error}); stop what holds it "
                              "or choose another with --port") from None


def serve(gallery: str | Path, port: int, address: str | None = None, *,
          kiosk: bool = False, interval: float | None = None) -> int:
    """Serve the Streamlit app on ``gallery`` until it stops; its exit code.

    A gallery written by an older artbias is brought up to date first (``bring_up_to_date``:
    the app only reads). Streamlit runs in its own process group, which is stopped whenever
    this process stops serving: the app exits, Ctrl+C (SIGINT), SIGTERM or SIGHUP, or an error
    here.
    """
    from gallery.store import GalleryError, Store

    store = Store(gallery)
    if not store.exists:
        raise GalleryError(f"no gallery at {gallery} (run `artbias demo` or a campaign first)")
    bring_up_to_date(store)  # a damaged file, or one that is no artbias gallery, is said now
    check_port(port, address)
    print(f"artbias gallery: serving {gallery} on http://localhost:{port} (Ctrl+C stops)", flush=True)
    child = None
    with _stop_signals_unwind():  # before the child starts, so no signal can orphan it
        try:
            child = subprocess.Popen(streamlit_command(gallery, port, address, kiosk=kiosk, interval=interval),
                                     start_new_session=True)
            return child.wait()
        except KeyboardInterrupt as stop:
            return 128 + getattr(stop, "signum", signal.SIGINT)
        finally:
            if child is not None:
                stop_process_group(child)


def bring_up_to_date(store) -> int | None:
    """Migrate ``store`` (a ``gallery.store.Store``) when an older artbias wrote it, saying so
    in one line; the schema version it had then, else None. Anything else a reader refuses (a
    damaged or foreign file, one from a newer artbias, one without tables) stays the reader's
    one-line ``GalleryError``; an older gallery is first read through (``Store.verify``), so a
    damaged one is refused before anything is written into it."""
    from gallery.store import SCHEMA_VERSION, GalleryError, Store

    try:
        store.read("SELECT 1")
        return None
    except GalleryError as refused:
        try:
            version = store.schema_version()
        except GalleryError:
            version = None
        if version is None or not 0 < version < SCHEMA_VERSION:
            raise refused from None
    store.verify()
    store.migrate()  # one transaction: every missing migration or none
    Store(store.root).read("SELECT 1")
    print(f"artbias gallery: brought {store.root} up to date (schema version {version} -> {SCHEMA_VERSION})",
          flush=True)
    return version


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP while serving: unwinds like Ctrl+C, so the child is stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame) -> None:
    raise _Stopped(signum)


@contextmanager
def _stop_signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``_Stopped`` inside the block (only the main thread can set
    signal handlers); the previous handlers come back afterwards."""
    names = ("SIGTERM", "SIGHUP")
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_stopped)
                    for sig in (getattr(signal, name) for name in names if hasattr(signal, name))}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_process_group(child: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Terminate ``child`` and its process group: SIGTERM, then SIGKILL when it is still there
    after ``timeout_s`` (or when asked to stop a second time meanwhile)."""
    def send(sig) -> None:
        try:
            if hasattr(os, "killpg"):
                os.killpg(child.pid, sig)  # started with start_new_session: the group is its pid
            else:
                child.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    send(signal.SIGTERM)
    try:
        child.wait(timeout=timeout_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        send(getattr(signal, "SIGKILL", signal.SIGTERM))
        child.wait()
