"""The real app in a real browser: ``streamlit run`` on a free port, headless-Chromium screenshots.

Needs Chromium (`apt-get install -y chromium` on Debian/Ubuntu); skipped with that reason when
it is missing. Set ``ARTBIAS_SCREENSHOT_DIR`` to keep the PNGs for a look.
"""

from __future__ import annotations

import pytest
from browser import capture, colour_share, distinct_colours, needs_chromium, serve
from sample_gallery import SampleSpec, build_sample_gallery

pytestmark = needs_chromium

# The prompt series' bar colour in the bias charts (#d95f02 in gallery/app/charts.py, drawn at
# opacity 0.85 over the white page).
PROMPT_ORANGE = (223, 119, 40)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    gallery = build_sample_gallery(
        tmp_path_factory.mktemp("gallery"), SampleSpec(runs_per_prompt=10, baseline_samples=30)
    )
    with serve(gallery, tmp_path_factory.mktemp("log")) as url:
        yield url


def test_gallery_page_screenshot_shows_the_artworks(served, tmp_path):
    pixels = capture(
        f"{served}/?page=gallery", "gallery", tmp_path, lambda p: distinct_colours(p) > 5000
    )
    assert pixels.shape[:2] == (900, 1280)
    assert distinct_colours(pixels) > 5000  # noisy painted scenes, not a blank or loading page
    sky = colour_share(pixels, (150, 190, 230), tolerance=45)
    assert sky > 0.02  # the sample scenes' skies are on screen


def test_bias_page_screenshot_shows_the_charts(served, tmp_path):
    pixels = capture(
        f"{served}/?page=bias", "bias", tmp_path, lambda p: colour_share(p, PROMPT_ORANGE) > 0
    )
    assert pixels.shape[:2] == (900, 1280)
    assert distinct_colours(pixels) > 50  # not a single colour
    assert colour_share(pixels, PROMPT_ORANGE) > 0.001  # the prompt's bars are drawn
