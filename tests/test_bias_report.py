"""``artbias bias`` on a small gallery written straight into the store schema."""

from __future__ import annotations

import io
import json
import time

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import write_lock_held
from sample_gallery import CLASSIFIER, ZERO_SHOT, SampleSpec, build_sample_gallery

from gallery.bias import gallery_bias
from gallery.cli import main

RUNS = 10


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """A generator folder with a training.json, as a trained zoo generator has."""
    folder = tmp_path_factory.mktemp("gen-c")
    counts = {"buildings": 0, "forest": 100, "glacier": 0, "mountain": 300, "sea": 100, "street": 0}
    (folder / "training.json").write_text(
        json.dumps({"data": {"path": "world", "class_counts": counts}})
    )
    return folder


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, trained_folder):
    spec = SampleSpec(runs_per_prompt=RUNS, baseline_samples=30, image_size=16)
    compositions = dict(spec.compositions)
    compositions[f"dcgan:{trained_folder}"] = compositions.pop("gen-b")
    spec = SampleSpec(
        compositions=compositions, runs_per_prompt=RUNS, baseline_samples=30, image_size=16
    )
    return build_sample_gallery(tmp_path_factory.mktemp("gallery"), spec)


def _run(capsys, *argv):
    code = main(["bias", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _direct_counts(gallery, labeller):
    """Counts straight from SQL: chosen artworks of finished searches, and baseline samples."""
    with duckdb.connect(str(gallery / "gallery.duckdb"), read_only=True) as con:
        return con.execute(
            """
            SELECT r.generator, coalesce(r.prompt, '(unguided baseline)') AS prompt, l.predicted, count(*) AS n
            FROM artworks a JOIN runs r USING (run_id) JOIN labels l USING (artwork_id)
            WHERE l.labeller = ? AND r.status = 'done' AND a.role IN ('chosen', 'baseline')
            GROUP BY ALL
            """,
            [labeller],
        ).df()


def test_csv_counts_match_the_store_and_leave_siblings_out(gallery, capsys):
    code, out, _ = _run(capsys, "--gallery", str(gallery), "--format", "csv", "--resamples", "200")
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    direct = _direct_counts(gallery, CLASSIFIER)
    assert len(table) == 6  # 2 generators x (2 prompts + baseline)
    for row in table.itertuples():
        mine = direct[(direct.generator == row.generator) & (direct.prompt == row.prompt)]
        assert row.n == mine["n"].sum()
        assert row.top_proportion == pytest.approx(mine["n"].max() / mine["n"].sum())
        assert row.top_low < row.top_proportion < row.top_high
    searches = table[table.prompt != "(unguided baseline)"]
    assert (searches["n"] == RUNS).all()  # one chosen artwork per run; top/pareto not counted
    assert (table[table.prompt == "(unguided baseline)"]["n"] == 30).all()


def test_json_carries_every_number_and_the_definitions(gallery, capsys):
    code, out, _ = _run(capsys, "--gallery", str(gallery), "--format", "json", "--resamples", "200")
    assert code == 0
    document = json.loads(out)
    assert document["labeller"] == CLASSIFIER and document["agreement_labeller"] == ZERO_SHOT
    assert "Wilson interval" in document["definitions"]
    expected = gallery_bias(gallery, n_resamples=200)
    assert len(document["reports"]) == len(expected.reports)
    for got, want in zip(document["reports"], expected.reports, strict=True):
        assert got["n"] == want.n and got["generator"] == want.generator
        assert got["vs_uniform"]["p_value"] == pytest.approx(want.vs_uniform.p_value)
        assert [r["corrected"] for r in got["rows"]] == pytest.approx(
            [r.corrected for r in want.rows]
        )
        assert got["kappa"]["kappa"] == pytest.approx(want.kappa.kappa)


def test_table_is_readable_and_lists_warnings(gallery, capsys):
    code, out, _ = _run(capsys, "--gallery", str(gallery), "--resamples", "200")
    assert code == 0
    for text in (
        "gen-a",
        "a beautiful landscape",
        "(unguided baseline)",
        "top class",
        "Warnings:",
        "->",
    ):
        assert text in out
    assert max(len(line) for line in out.splitlines()[:12]) < 200


def test_training_composition_is_the_default_reference(gallery, trained_folder):
    bias = gallery_bias(gallery, n_resamples=200)
    trained = [r for r in bias.reports if r.generator.endswith(str(trained_folder))]
    assert trained and all(r.reference_name == "training data" for r in trained)
    shares = [row.reference_proportion for row in trained[0].rows]
    assert shares == pytest.approx([0, 0.2, 0, 0.6, 0.2, 0])
    # buildings and street occur in its samples but never in its training data
    baseline = next(r for r in trained if r.is_baseline)
    assert baseline.vs_reference.p_value == 0.0
    assert any("no reference composition" in note and "gen-a" in note for note in bias.notes)


def test_explicit_reference_file(gallery, tmp_path):
    reference = tmp_path / "reference.json"
    reference.write_text(
        json.dumps(
            {"forest": 1, "mountain": 1, "sea": 1, "glacier": 1, "buildings": 1, "street": 1}
        )
    )
    bias = gallery_bias(gallery, references=[f"gen-a={reference}"], n_resamples=200)
    gen_a = [r for r in bias.reports if r.generator == "gen-a"]
    assert all(r.reference_name == "reference.json" for r in gen_a)
    for report in gen_a:  # a uniform reference gives the same test as "vs uniform"
        assert report.vs_reference.statistic == pytest.approx(report.vs_uniform.statistic)


def test_zero_shot_labeller_report_has_no_correction(gallery, capsys):
    code, out, _ = _run(
        capsys,
        "--gallery",
        str(gallery),
        "--labeller",
        ZERO_SHOT,
        "--format",
        "json",
        "--resamples",
        "200",
    )
    assert code == 0
    document = json.loads(out)
    assert document["labeller"] == ZERO_SHOT and document["agreement_labeller"] == CLASSIFIER
    assert not any(report["corrected_available"] for report in document["reports"])
    assert any("no confusion matrix" in note for note in document["notes"])


def test_bad_input_gives_one_line_errors(gallery, tmp_path, capsys):
    code, _, err = _run(capsys, "--gallery", str(gallery), "--labeller", "nope")
    assert code == 2 and "nope" in err and CLASSIFIER in err
    code, _, err = _run(capsys, "--gallery", str(tmp_path / "missing"))
    assert code == 2 and "no gallery" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"volcano": 3}))
    code, _, err = _run(capsys, "--gallery", str(gallery), "--reference", str(bad))
    assert code == 2 and "volcano" in err


def test_reading_waits_for_a_writer(gallery):
    with write_lock_held(gallery / "gallery.duckdb"):
        started = time.monotonic()
        bias = gallery_bias(gallery, n_resamples=200)
        waited = time.monotonic() - started
    assert bias.reports and waited > 0.3  # it waited out the lock instead of failing
    assert np.isfinite([r.entropy for r in bias.reports]).all()
