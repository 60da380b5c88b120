"""``artbias bias`` (the bias report) and ``artbias gallery`` (serve the Streamlit app).

Registration stays light: the statistics stack and Streamlit load inside the handlers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app" / "app.py"
DEFAULT_GALLERY = "gallery-demo"
DEFAULT_PORT = 8501


def register(commands) -> None:
    bias = commands.add("bias", _bias, "a gallery's category bias per generator and prompt")
    bias.add_argument("--gallery", required=True, help="gallery folder (holds gallery.duckdb)")
    bias.add_argument("--labeller", help="labeller to report on (default: the trained classifier)")
    bias.add_argument("--format", choices=("table", "csv", "json"), default="table")
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
        "gallery", _serve, "serve the read-only Streamlit gallery (or run a gallery subcommand)"
    )
    parser.add_argument(
        "--gallery", default=DEFAULT_GALLERY, help=f"gallery folder (default ./{DEFAULT_GALLERY})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--address", default=None, help="address to bind (default: Streamlit's)")


def _bias(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from gallery.bias import gallery_bias, render

    if args.resamples < 100:
        raise ConfigError(f"--resamples must be at least 100, got {args.resamples}")
    bias = gallery_bias(
        args.gallery,
        labeller=args.labeller,
        references=args.reference,
        seed=args.seed,
        n_resamples=args.resamples,
    )
    print(render(bias, args.format))
    return 0


def streamlit_command(gallery: str | Path, port: int, address: str | None = None) -> list[str]:
    """The ``streamlit run`` command line for the app (headless: no browser is opened)."""
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
    ]
    if address:
        command += ["--server.address", address]
    return command + ["--", "--gallery", str(Path(gallery).resolve())]


def _serve(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from gallery.store import GalleryError, Store

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    if not Store(args.gallery).exists:
        raise GalleryError(f"no gallery at {args.gallery} (run `artbias demo` or a campaign first)")
    print(f"artbias gallery: serving {args.gallery} on http://localhost:{args.port} (Ctrl+C stops)")
    return subprocess.call(streamlit_command(args.gallery, args.port, args.address))
