"""The real app in a real browser: ``streamlit run`` on a free port, headless-Chromium screenshots.

Needs Chromium (`apt-get install -y chromium` on Debian/Ubuntu); skipped with that reason when
it is missing. Set ``ARTBIAS_SCREENSHOT_DIR`` to keep the PNGs for a look.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_gallery import SampleSpec, build_sample_gallery

from gallery.report_commands import streamlit_command

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)

START_TIMEOUT_S = 90
ATTEMPTS = 8  # the first loads run the page's imports and statistics; later ones hit the cache
# The prompt series' bar colour in the bias charts (#d95f02 in gallery/app/charts.py, drawn at
# opacity 0.85 over the white page).
PROMPT_ORANGE = (223, 119, 40)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    gallery = build_sample_gallery(
        tmp_path_factory.mktemp("gallery"), SampleSpec(runs_per_prompt=10, baseline_samples=30)
    )
    port = _free_port()
    env = os.environ | {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    log = tmp_path_factory.mktemp("log") / "streamlit.log"
    with open(log, "w") as handle:
        server = subprocess.Popen(
            streamlit_command(gallery, port, "127.0.0.1"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _screenshot(url: str, target: Path, profile: Path) -> np.ndarray:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "--virtual-time-budget=8000",
        f"--screenshot={target}",
        url,
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    if not target.is_file():
        return np.zeros((1, 1, 3), dtype=np.uint8)
    return np.asarray(Image.open(target).convert("RGB"))


def _colour_share(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 20) -> float:
    distance = np.abs(pixels.astype(int) - np.array(colour)).max(axis=-1)
    return float(np.mean(distance <= tolerance))


def _capture(url: str, name: str, tmp_path: Path, rendered) -> np.ndarray:
    """Screenshot until ``rendered(pixels)`` (the page finished drawing) or attempts run out."""
    pixels = np.zeros((1, 1, 3), dtype=np.uint8)
    for attempt in range(ATTEMPTS):
        target = tmp_path / f"{name}.png"
        target.unlink(missing_ok=True)
        pixels = _screenshot(url, target, tmp_path / f"profile-{name}-{attempt}")
        if rendered(pixels):
            break
        time.sleep(2)
    keep = os.environ.get("ARTBIAS_SCREENSHOT_DIR")
    if keep and (tmp_path / f"{name}.png").is_file():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", Path(keep) / f"{name}.png")
    return pixels


def _distinct_colours(pixels: np.ndarray) -> int:
    return len(np.unique(pixels.reshape(-1, 3), axis=0))


def test_gallery_page_screenshot_shows_the_artworks(served, tmp_path):
    pixels = _capture(
        f"{served}/?page=gallery", "gallery", tmp_path, lambda p: _distinct_colours(p) > 5000
    )
    assert pixels.shape[:2] == (900, 1280)
    assert _distinct_colours(pixels) > 5000  # noisy painted scenes, not a blank or loading page
    sky = _colour_share(pixels, (150, 190, 230), tolerance=45)
    assert sky > 0.02  # the sample scenes' skies are on screen


def test_bias_page_screenshot_shows_the_charts(served, tmp_path):
    pixels = _capture(
        f"{served}/?page=bias", "bias", tmp_path, lambda p: _colour_share(p, PROMPT_ORANGE) > 0
    )
    assert pixels.shape[:2] == (900, 1280)
    assert _distinct_colours(pixels) > 50  # not a single colour
    assert _colour_share(pixels, PROMPT_ORANGE) > 0.001  # the prompt's bars are drawn
