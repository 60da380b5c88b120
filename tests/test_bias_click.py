"""The bias page's click-through in a real browser: a click on a bar of the "By prompt" chart
opens the gallery on exactly the artworks that bar counts (headless Chromium driven over the
DevTools protocol, ``browser.py``; the same click-through by the per-class buttons is tested
with ``AppTest`` in test_workbench.py).

Needs Chromium and the websockets package; skipped with that reason where they are missing.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from browser import chromium, colour_share, keep_screenshot, needs_devtools, serve
from sample_gallery import SampleSpec, build_sample_gallery

from gallery.bias import gallery_bias

pytestmark = needs_devtools

# The prompt series' bar colour in the bias charts (#d95f02 in gallery/app/charts.py, drawn at
# opacity 0.85 over the white page), as in test_app_screenshot.py.
PROMPT_ORANGE = (223, 119, 40)
_MATCHES = r"(\d+) of \d+ artworks match"
_GALLERY = "location.search.includes('page=gallery') && location.search"


def _bar(name: str, series: str) -> str:
    """JavaScript: the box [left, top, right, bottom] of class ``name``'s bar of ``series`` in the
    page's first chart (Vega draws SVG with an ARIA label per bar), scrolled into view; null while
    it is not drawn."""
    label = json.dumps(f"class: {name}; ")
    return f"""(() => {{
        const chart = document.querySelector('[data-testid=stVegaLiteChart]');
        const bars = chart ? [...chart.querySelectorAll('[aria-roledescription=bar]')] : [];
        const bar = bars.find(b => (b.getAttribute('aria-label') || '').startsWith({label})
                                   && b.getAttribute('aria-label').includes({json.dumps(f"series: {series} (n=")}));
        if (!bar) return null;
        bar.scrollIntoView({{block: 'center'}});
        const r = bar.getBoundingClientRect();
        return r.height > 10 ? [r.left, r.top, r.right, r.bottom] : null;
    }})()"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    gallery = build_sample_gallery(
        tmp_path_factory.mktemp("gallery"), SampleSpec(runs_per_prompt=10, baseline_samples=30)
    )
    with serve(gallery, tmp_path_factory.mktemp("log")) as url:
        yield gallery, url


def _click(page, x: float, y: float) -> None:
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    for kind in ("mousePressed", "mouseReleased"):
        page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def test_a_click_on_a_bias_bar_opens_the_gallery_on_its_artworks(served, tmp_path):
    gallery, url = served
    bias = gallery_bias(gallery, defer=True)  # the page's default labeller; counts need no resampling
    report = next(r for r in bias.reports if not r.is_baseline)  # the first report the page shows
    counts = {row.name: row.count for row in report.rows}
    with chromium(tmp_path / "profile") as page:
        page.open(f"{url}/?page=bias")
        assert page.wait(_bar(report.top.name, report.prompt_label), timeout=120), \
            "the bias page drew no bar for the report's top class"
        opened = pixels = None
        for _ in range(3):  # a click that lands while a busy machine still wires up the chart is retried
            assert page.wait_idle(timeout=120)  # the selection is bound once the script has finished
            if page.evaluate(_GALLERY):
                break  # the previous click got through after all
            time.sleep(0.5)
            box = page.evaluate(_bar(report.top.name, report.prompt_label))
            if box is None:
                continue
            pixels = page.screenshot()
            keep_screenshot("bias-before-click", pixels)
            left, top, right, bottom = box
            # a quarter across and just above the axis: on the bar, clear of its interval's rule and ticks
            _click(page, left + (right - left) / 4, bottom - 3)
            opened = page.wait(_GALLERY, timeout=45)
            if opened:
                break
        opened = opened or page.evaluate(_GALLERY)
        assert opened, "the click did not open the gallery"
        assert page.wait(f"(document.body.innerText.match(/{_MATCHES}/) || [])[1]", timeout=90)
        assert page.wait_idle(timeout=60)
        opened, text = page.evaluate("location.search"), page.evaluate("document.body.innerText")
        keep_screenshot("bias-click-gallery", page.screenshot())
    assert pixels is not None and colour_share(pixels, PROMPT_ORANGE) > 0.001  # the chart was drawn when clicked
    params = {name: values[0] for name, values in parse_qs(urlparse(opened).query).items()}
    assert params["class"] == report.top.name  # the bar clicked
    assert params["generator"] == report.generator and params["prompt"] == report.prompt_label
    assert params.get("labeller", report.labeller) == report.labeller  # the URL leaves out the default
    shown = int(re.search(_MATCHES, text).group(1))
    assert shown == counts[report.top.name] > 0  # exactly the artworks the bar counts
