"""Human annotations: a blind stratified sample out, labels made elsewhere back in, bad files refused."""

from __future__ import annotations

import csv

import pytest
from sample_gallery import CLASSIFIER, SampleSpec, build_sample_gallery

from gallery.cli import main
from gallery.store import Store
from gallery.store.queries import labelled_artworks


@pytest.fixture()
def gallery(tmp_path):
    return build_sample_gallery(tmp_path / "g", SampleSpec(runs_per_prompt=6, baseline_samples=10,
                                                           image_size=16))


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _labels(gallery) -> int:
    return int(Store(gallery).read("SELECT count(*) AS n FROM labels")["n"].iloc[0])


def test_export_is_a_blind_stratified_sample(gallery, tmp_path, capsys):
    out = tmp_path / "sheet.csv"
    assert main(["annotate", "export", "--gallery", str(gallery), "--out", str(out), "--sample", "4",
                 "--seed", "3"]) == 0
    assert "24 artworks from 6 generator/prompt strata" in capsys.readouterr().out
    rows = _rows(out)
    assert list(rows[0]) == ["artwork_id", "image_path", "annotator", "label"]  # no model label
    assert all(row["label"] == row["annotator"] == "" for row in rows)
    counted = labelled_artworks(gallery, CLASSIFIER).set_index("artwork_id")
    strata = counted.loc[[row["artwork_id"] for row in rows]].groupby(
        ["generator", counted["prompt"].fillna("-")]).size()
    assert len(strata) == 6 and (strata == 4).all()
    assert all((gallery / row["image_path"]).is_file() for row in rows)
    again = tmp_path / "again.csv"
    main(["annotate", "export", "--gallery", str(gallery), "--out", str(again), "--sample", "4", "--seed", "3"])
    assert again.read_text() == out.read_text()  # seeded
    assert main(["annotate", "export", "--gallery", str(gallery), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_import_stores_labels_as_a_human_labeller_and_reports_agreement(gallery, tmp_path, capsys):
    counted = labelled_artworks(gallery, CLASSIFIER)
    rows = [[a, "alice", p] for a, p in zip(counted["artwork_id"][:10], counted["predicted"][:10], strict=True)]
    rows.append([counted["artwork_id"].iloc[11], "", ""])  # left unlabelled: skipped
    path = _write(tmp_path / "labels.csv", ["artwork_id", "annotator", "label"], rows)
    assert main(["annotate", "import", str(path), "--gallery", str(gallery)]) == 0
    out = capsys.readouterr().out
    assert "imported 10 labels (human:alice 10)" in out and "1 rows without a label skipped" in out
    assert f"human:alice vs {CLASSIFIER} on gen-a: kappa 1.00" in out
    stored = labelled_artworks(gallery, "human:alice")
    assert len(stored) == 10 and (stored["predicted"].tolist() == counted["predicted"][:10].tolist())
    # a re-import by the same annotator replaces the earlier label, by the labeller column too
    again = _write(tmp_path / "again.csv", ["artwork_id", "labeller", "label"],
                   [[counted["artwork_id"].iloc[0], "human:alice", "street"]])
    assert main(["annotate", "import", str(again), "--gallery", str(gallery)]) == 0
    stored = labelled_artworks(gallery, "human:alice").set_index("artwork_id")["predicted"]
    assert len(stored) == 10 and stored[counted["artwork_id"].iloc[0]] == "street"


@pytest.mark.parametrize("header, row, message", [
    (["artwork_id", "labeller", "label"], ["{id}", "classifier-world", "sea"],
     "labeller 'classifier-world' is not a human annotator"),
    (["artwork_id", "labeller", "label"], ["{id}", "robot:x", "sea"], "is not a human annotator"),
    (["artwork_id", "annotator", "label"], ["{id}", "bad name!", "sea"], "is not a simple identifier"),
    (["artwork_id", "annotator", "label"], ["no-such-artwork:0", "alice", "sea"], "not in gallery"),
    (["artwork_id", "annotator", "label"], ["{id}", "alice", "volcano"], "label 'volcano' is not a class"),
    (["artwork_id", "who", "label"], ["{id}", "alice", "sea"], "needs columns artwork_id, label and one of"),
])
def test_bad_annotation_files_give_one_line_and_write_nothing(gallery, tmp_path, capsys, header, row, message):
    artwork = labelled_artworks(gallery, CLASSIFIER)["artwork_id"].iloc[0]
    good = [artwork, "alice", "sea"] if "annotator" in header else [artwork, "human:alice", "sea"]
    rows = [good, [cell.format(id=artwork) for cell in row]] if "who" not in header else [row]
    path = _write(tmp_path / "bad.csv", header, [[c.format(id=artwork) for c in r] for r in rows])
    before = _labels(gallery)
    assert main(["annotate", "import", str(path), "--gallery", str(gallery)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _labels(gallery) == before


def test_conflicting_duplicates_and_empty_files_are_refused(gallery, tmp_path, capsys):
    artwork = labelled_artworks(gallery, CLASSIFIER)["artwork_id"].iloc[0]
    path = _write(tmp_path / "dup.csv", ["artwork_id", "annotator", "label"],
                  [[artwork, "alice", "sea"], [artwork, "alice", "forest"]])
    assert main(["annotate", "import", str(path), "--gallery", str(gallery)]) == 2
    assert "labels artwork" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["annotate", "import", str(empty), "--gallery", str(gallery)]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["annotate", "import", str(tmp_path / "missing.csv"), "--gallery", str(gallery)]) == 2
    assert "cannot read annotation file" in capsys.readouterr().err


def test_ingest_without_panel_files_and_export_labels_options(gallery, tmp_path, capsys):
    before = _labels(gallery)
    assert main(["annotate", "ingest", "--gallery", str(gallery)]) == 0
    assert "no annotation panel labels to ingest" in capsys.readouterr().out
    assert _labels(gallery) == before
    out = tmp_path / "labels.csv"
    assert main(["annotate", "export", "--labels", "--sample", "3", "--gallery", str(gallery), "--out", str(out)]) == 2
    assert "--labels writes the labels made so far" in capsys.readouterr().err and not out.exists()
    assert main(["annotate", "export", "--labels", "--gallery", str(gallery), "--out", str(out)]) == 0
    assert "wrote 0 human labels (none yet)" in capsys.readouterr().out
    assert _rows(out) == []
    with open(out, newline="") as handle:
        assert next(csv.reader(handle)) == ["artwork_id", "annotator", "label"]
