"""The gallery app in a real browser, for the tests: ``streamlit run`` on a free port and headless
Chromium, one-shot (``capture``, ``dump_dom``) or driven over the DevTools protocol (``chromium``).

    with serve(gallery, tmp_path_factory.mktemp("log")) as url:        # kiosk=True, interval=300, ...
        pixels = capture(f"{url}/?page=bias", "bias", tmp_path, lambda p: distinct_colours(p) > 50)
        with chromium(tmp_path / "profile") as page:
            page.open(f"{url}/?page=annotate&annotator=keys")
            page.wait("!!document.querySelector('.st-key-annotate-label-1 button')")
            page.wait_idle()
            page.press("3")
            pixels, text = page.screenshot(), page.evaluate("document.body.innerText")

Needs Chromium (``apt-get install -y chromium``); mark a test ``needs_chromium`` (one-shot use)
or ``needs_devtools`` (``chromium()``, which also needs the websockets package, a Streamlit
dependency) and it is skipped with that reason where they are missing. Set
``ARTBIAS_SCREENSHOT_DIR`` to keep the screenshots for a look.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gallery.report_commands import streamlit_command

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None)
try:
    from websockets.sync.client import connect as websocket_connect
except ImportError:  # Streamlit's own dependency; without it, the DevTools tests are skipped
    websocket_connect = None

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
needs_devtools = pytest.mark.skipif(
    CHROMIUM is None or websocket_connect is None,
    reason="needs chromium (apt-get install -y chromium) and the websockets package",
)

SCREEN = (1280, 900)  # width, height of every page
START_TIMEOUT_S = 90
ATTEMPTS = 8  # the first loads run the page's imports and statistics; later ones hit the cache
# True once Streamlit has finished running the script (the page shows what this run drew).
STREAMLIT_IDLE = "document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", f"--window-size={SCREEN[0]},{SCREEN[1]}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


# -- serving the app -----------------------------------------------------------------------------
def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def serve(gallery: Path, log_dir: Path, **options) -> Iterator[str]:
    """The app on ``gallery`` by ``streamlit run`` (``streamlit_command``'s ``options``: kiosk,
    interval) on a free port: its URL once healthy; the log goes to ``log_dir``; stopped after."""
    port = free_port()
    log = Path(log_dir) / "streamlit.log"
    env = os.environ | {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log, "w") as handle:
        server = subprocess.Popen(streamlit_command(gallery, port, "127.0.0.1", **options),
                                  stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(server)


# -- pixels --------------------------------------------------------------------------------------
def colour_share(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 20) -> float:
    """The share of pixels within ``tolerance`` (per channel) of ``colour``."""
    distance = np.abs(pixels.astype(int) - np.array(colour)).max(axis=-1)
    return float(np.mean(distance <= tolerance))


def distinct_colours(pixels: np.ndarray) -> int:
    return len(np.unique(pixels.reshape(-1, 3), axis=0))


def keep_screenshot(name: str, pixels: np.ndarray) -> None:
    """``ARTBIAS_SCREENSHOT_DIR/name.png``, where that variable is set."""
    keep = os.environ.get("ARTBIAS_SCREENSHOT_DIR")
    if keep and pixels.size > 3:
        Path(keep).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(Path(keep) / f"{name}.png")


# -- one-shot headless Chromium ------------------------------------------------------------------
def _headless(url: str, profile: Path, *flags: str, text: bool = False) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000", *flags, url]
    return subprocess.run(command, capture_output=True, text=text, timeout=120, check=False)


def screenshot(url: str, target: Path, profile: Path) -> np.ndarray:
    """One ``--screenshot`` of ``url`` into ``target``: its RGB pixels, or one black pixel if
    Chromium wrote none."""
    _headless(url, profile, "--disable-quic", f"--screenshot={target}")
    if not target.is_file():
        return np.zeros((1, 1, 3), dtype=np.uint8)
    return np.asarray(Image.open(target).convert("RGB"))


def capture(url: str, name: str, tmp_path: Path, rendered: Callable[[np.ndarray], bool],
            attempts: int = ATTEMPTS) -> np.ndarray:
    """Screenshot ``url`` until ``rendered(pixels)`` (the page finished drawing) or ``attempts``
    run out: the last pixels, kept as ``name``.png (``keep_screenshot``)."""
    pixels = np.zeros((1, 1, 3), dtype=np.uint8)
    target = tmp_path / f"{name}.png"
    for attempt in range(attempts):
        target.unlink(missing_ok=True)
        pixels = screenshot(url, target, tmp_path / f"profile-{name}-{attempt}")
        if rendered(pixels):
            break
        time.sleep(2)
    keep_screenshot(name, pixels)
    return pixels


def dump_dom(url: str, tmp_path: Path, until: Callable[[str], bool] = bool, attempts: int = 4) -> str:
    """``url``'s DOM after its scripts ran (``--dump-dom``), reloaded until ``until(dom)`` or
    ``attempts`` run out: the last one."""
    dom = ""
    for attempt in range(attempts):
        dom = _headless(url, tmp_path / f"dom-{attempt}", "--dump-dom", text=True).stdout
        if until(dom):
            break
    return dom


# -- Chromium driven over the DevTools protocol --------------------------------------------------
# KeyboardEvent.key -> (code, windowsVirtualKeyCode) of the keys that are not one character.
_NAMED_KEYS = {"ArrowLeft": ("ArrowLeft", 37), "ArrowUp": ("ArrowUp", 38), "ArrowRight": ("ArrowRight", 39),
               "ArrowDown": ("ArrowDown", 40), " ": ("Space", 32), "Enter": ("Enter", 13),
               "Escape": ("Escape", 27), "Backspace": ("Backspace", 8), "Tab": ("Tab", 9)}


class Page:
    """One headless-Chromium tab over the DevTools protocol: open a URL, wait for the page (a
    screenshot flag alone fires before Streamlit has streamed it), press real keys, read the DOM
    and the pixels."""

    def __init__(self, socket):
        self._socket, self._id = socket, 0

    def call(self, method: str, **params) -> dict:
        """One DevTools command's result (events arriving in between are skipped)."""
        self._id += 1
        self._socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message["result"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The JavaScript ``expression``'s value (None where it threw)."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait(self, expression: str, timeout: float = 90):
        """The first truthy value of ``expression``, polled; None if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        return None

    def wait_idle(self, timeout: float = 30) -> bool:
        """Until Streamlit has finished running the script: False if ``timeout`` passes first."""
        return bool(self.wait(STREAMLIT_IDLE, timeout))

    def press(self, key: str) -> None:
        """Press and release ``key`` (a ``KeyboardEvent.key``: "3", "u", " ", "ArrowRight", ...)."""
        if key in _NAMED_KEYS:
            code, key_code = _NAMED_KEYS[key]
            typed = {}
        else:
            assert len(key) == 1, f"no key code for {key!r}"
            code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
            key_code, typed = ord(key.upper()), {"text": key}
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=key_code,
                      **(typed if kind == "keyDown" else {}))

    def press_until(self, key: str, expression: str, timeout: float = 30, patience: float = 10) -> bool:
        """Press ``key`` until ``expression`` holds: again only when nothing changed for
        ``patience`` seconds (under load Streamlit can bind its keys after it reports idle, so
        a first press may be lost; one that was merely slow has shown its effect by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.wait_idle()
            self.press(key)
            if self.wait(expression, min(patience, max(deadline - time.monotonic(), 0.5))):
                return True
        return False

    def screenshot(self) -> np.ndarray:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@contextmanager
def chromium(profile: Path) -> Iterator[Page]:
    """Headless Chromium (a fresh profile in ``profile``) with its blank tab as a ``Page`` of
    ``SCREEN`` size; closed after."""
    port = free_port()
    browser = subprocess.Popen([CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        targets = []
        while not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    targets = [t for t in json.load(response) if t["type"] == "page"]
            except (OSError, ValueError):
                pass
            if not targets:
                assert time.monotonic() < deadline, "chromium's debugging port never answered"
                time.sleep(0.2)
        with websocket_connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as connection:
            page = Page(connection)
            page.call("Emulation.setDeviceMetricsOverride", width=SCREEN[0], height=SCREEN[1],
                      deviceScaleFactor=1, mobile=False)
            yield page
    finally:
        _stop(browser)
