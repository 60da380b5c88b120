"""Exhibition page: a full-screen slideshow for visitors (``artbias gallery --kiosk``).

``?page=exhibition&interval=8&slide=1&generator=NAME&prompt=TEXT`` (all optional). It opens
on an introduction, then shows the chosen artworks in an order that spreads generators and
prompts (``kiosk.build_slides``), each with a caption in plain words, and one finding slide
per generator from the bias report. It advances every ``interval`` seconds (a Streamlit
fragment re-run on a timer) until paused; ← / → / space and the buttons go back, forward
and pause. The slides are rebuilt whenever the gallery changes, so artworks a running
campaign adds join the show. The content is ``gallery.app.kiosk``; this module draws it.
"""

from __future__ import annotations

import inspect
import time
from datetime import timedelta
from pathlib import Path

import streamlit as st

from data.errors import ArtbiasError
from gallery.app import common, kiosk
from gallery.store import queries

# Streamlit binds the keys itself where it can (``st.button(shortcut=...)``); with an older
# Streamlit the buttons still work, without keys.
_SHORTCUTS = "shortcut" in inspect.signature(st.button).parameters
CONTROLS = (  # (key, label, icon, shortcut)
    ("kiosk_prev", "Previous", ":material/arrow_back:", "Left"),
    ("kiosk_pause", "Pause", ":material/pause:", "Space"),
    ("kiosk_next", "Next", ":material/arrow_forward:", "Right"),
)

# Full screen in a dark room: no sidebar, header, toolbar, Deploy button, running-man status
# or footer (``artbias gallery --kiosk`` also turns the toolbar off in Streamlit's config).
# Pictures are already enlarged by whole factors (``kiosk.upscale``); ``pixelated`` keeps them
# sharp where the browser scales them again to fit the screen.
_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header,
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"], .stAppDeployButton, #MainMenu, footer {display: none !important;}
.stApp {background: #111;}
.block-container {padding-top: 1.2rem; padding-bottom: 0.5rem; max-width: 100%;}
.st-key-kiosk_picture {align-items: center;}
.st-key-kiosk_picture img {max-height: 66vh; width: auto !important; max-width: 100%; image-rendering: pixelated;}
.kiosk-title {color: #f2f2f2; text-align: center; font-size: 2.6rem; font-weight: 600; margin: 6vh 0 1.5rem;}
.kiosk-text {color: #ddd; font-size: 1.45rem; line-height: 1.5; max-width: 46rem; margin: 0 auto 1rem;}
.kiosk-caption {color: #eee; text-align: center; font-size: 1.5rem; margin-top: 0.6rem;}
.kiosk-meta {color: #999; text-align: center; font-size: 0.95rem; margin: 0.3rem 0;}
</style>
"""


def _interval() -> tuple[float, str | None]:
    """Seconds per slide: ``?interval=``, else ``artbias gallery --interval``, else the default."""
    raw = st.query_params.get("interval")
    if raw is None:
        raw = common.kiosk_settings()[1]
    if raw is None:
        return kiosk.INTERVAL_S, None
    default = kiosk.INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        return default, f"interval “{common.escape(raw, 40)}” is not a number of seconds; using {default:g}"
    low, high = kiosk.INTERVAL_RANGE_S
    if not low <= value <= high:
        return default, f"interval must be {low:g}–{high:g} seconds; using {default:g}"
    return value, None


def _start() -> tuple[int, str | None]:
    """The slide to open on (``?slide=N``, 1 = the introduction)."""
    raw = st.query_params.get("slide")
    if raw is None:
        return 0, None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        return 0, f"slide “{common.escape(raw, 40)}” is not a slide number (1, 2, …); starting at the introduction"
    return value - 1, None


def _slides(gallery: str, fingerprint: tuple, generators: tuple, prompts: tuple) -> list[kiosk.Slide]:
    """The show for this gallery state: artworks, their captions and the findings (the bias
    report is cached per gallery state; the two reads here are small)."""
    try:
        bias = common.bias(gallery, None, fingerprint)
    except ArtbiasError:  # no report (yet): nothing labelled, or a read timed out; retried next time
        bias = None
    labeller = bias.labeller if bias is not None else common.default_labeller(common.options(gallery, fingerprint))
    artworks = queries.exhibition_artworks(
        gallery,
        queries.ArtworkFilter(generators=generators, prompts=prompts, roles=("chosen",), labeller=labeller),
        per_group=kiosk.MAX_PICTURES,
    )
    if artworks.empty:
        return []
    if bias is not None:
        counts = kiosk.report_counts(bias)
    else:
        counts = kiosk.class_counts(queries.labelled_artworks(gallery, labeller)) if labeller else {}
    shown = set(artworks["generator"])
    findings = {} if bias is None else {g: kiosk.finding_lines(bias, g) for g in sorted(shown)}
    return kiosk.build_slides(artworks, counts, findings)


def _step(delta: int) -> None:
    st.session_state["kiosk_position"] = st.session_state.get("kiosk_position", 0) + delta
    st.session_state["kiosk_shown_at"] = time.monotonic()


def _toggle_pause() -> None:
    st.session_state["kiosk_paused"] = not st.session_state.get("kiosk_paused", False)
    st.session_state["kiosk_shown_at"] = time.monotonic()


def _position(count: int, interval: float, start: int) -> int:
    """The slide to show now: the timer's re-runs move on once ``interval`` has passed since
    the slide appeared (a little early is fine: timers drift), unless paused."""
    state, now = st.session_state, time.monotonic()
    if "kiosk_position" not in state:
        state["kiosk_position"], state["kiosk_shown_at"] = start, now
    elif not state.get("kiosk_paused") and now - state["kiosk_shown_at"] >= interval - min(1.0, interval / 4):
        state["kiosk_position"] += 1
        state["kiosk_shown_at"] = now
    return state["kiosk_position"] % count


def _html(text: str, css: str) -> None:
    st.markdown(f'<div class="{css}">{text}</div>', unsafe_allow_html=True)


def _draw(gallery: Path, slide: kiosk.Slide) -> None:
    # Stored text (prompts, names) is escaped for HTML and markdown: shown as written, never markup.
    if slide.kind != "artwork":
        _html(common.escape_html(slide.title, None), "kiosk-title")
        for line in slide.lines:
            _html(common.escape_html(line, None), "kiosk-text")
        return
    _, middle, _ = st.columns([1, 4, 1])
    with middle:
        image = common.load_image(gallery, slide.image_path)
        if image is None:
            st.caption(common.PLACEHOLDER)
            enlarged = ""
        else:
            picture, factor = kiosk.upscale(image)
            with st.container(key="kiosk_picture"):
                st.image(picture, output_format="PNG")
            enlarged = f"{image.width} × {image.height} pixels, shown {factor}× larger" if factor > 1 else ""
        _html(common.escape_html(slide.title, None), "kiosk-caption")
        if enlarged:
            _html(enlarged, "kiosk-meta")


def _controls(paused: bool) -> None:
    _, *cells, _ = st.columns([2, 1, 1, 1, 2])
    actions = {"kiosk_prev": (_step, (-1,)), "kiosk_pause": (_toggle_pause, ()), "kiosk_next": (_step, (1,))}
    for cell, (key, label, icon, shortcut) in zip(cells, CONTROLS, strict=True):
        if key == "kiosk_pause" and paused:
            label, icon = "Play", ":material/play_arrow:"
        callback, args = actions[key]
        extra = {"shortcut": shortcut} if _SHORTCUTS else {}
        cell.button(label, key=key, icon=icon, on_click=callback, args=args, width="stretch", **extra)


def render(gallery: Path, fingerprint: tuple) -> None:
    st.markdown(_CSS, unsafe_allow_html=True)
    interval, problem = _interval()
    start, start_problem = _start()
    for message in (problem, start_problem):
        if message:
            st.warning(message)
    generators = tuple(st.query_params.get_all("generator"))
    prompts = tuple(st.query_params.get_all("prompt"))

    @st.fragment(run_every=timedelta(seconds=interval))
    def show() -> None:
        slides = _slides(str(gallery), queries.fingerprint(gallery), generators, prompts)
        if not slides:
            st.info("No artworks to show yet" + (" for these filters." if generators or prompts else "."))
            return
        index = _position(len(slides), interval, start)
        paused = st.session_state.get("kiosk_paused", False)
        _draw(gallery, slides[index])
        _controls(paused)
        status = "paused" if paused else f"next in {interval:g} s"
        _html(f"{index + 1} / {len(slides)} · {status}", "kiosk-meta")

    show()
    if not common.kiosk_settings()[0] and st.button("Leave the exhibition"):
        common.goto("gallery")
