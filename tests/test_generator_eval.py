"""`artbias eval generator`: the class mix of a generator's unguided samples vs its training composition."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from classifier.generator_eval import asked_class_agreement, unguided_composition
from data.errors import ConfigError
from gallery.cli import main
from generators.dcgan import DCGANConfig, build_dcgan, save_dcgan
from generators.training_record import training_composition


@pytest.fixture()
def tiny_dcgan(tmp_path):
    folder = tmp_path / "dcgan"
    config = DCGANConfig(image_size=32, nz=8, ngf=8, ndf=8)
    save_dcgan(*build_dcgan(config), config, folder)
    counts = {"buildings": 0, "forest": 0, "glacier": 0, "mountain": 30, "sea": 10, "street": 0}
    (folder / "training.json").write_text(json.dumps({"data": {"class_counts": counts}}))
    return folder


def test_counts_proportions_and_distance_to_training(tiny_dcgan, tiny_clip_dir):
    found = unguided_composition(f"dcgan:{tiny_dcgan}", f"clip:{tiny_clip_dir}", n=40, seed=3, batch_size=16,
                                 progress=False)
    assert sum(found.counts) == 40 and len(found.classes) == 6
    assert found.training == pytest.approx([0, 0, 0, 0.75, 0.25, 0])
    expected = 0.5 * sum(abs(p - q) for p, q in zip(found.proportions, found.training, strict=True))
    assert found.total_variation == pytest.approx(expected)
    again = unguided_composition(f"dcgan:{tiny_dcgan}", f"clip:{tiny_clip_dir}", n=40, seed=3, progress=False)
    assert again.counts == found.counts  # seeded


def test_training_composition_comes_from_the_generators_record(tiny_dcgan, tmp_path):
    classes = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    assert training_composition(f"dcgan:{tiny_dcgan}", classes) == pytest.approx([0, 0, 0, 0.75, 0.25, 0])
    assert training_composition(f"dcgan:{tiny_dcgan}", ["sea", "sky"]) is None  # its classes are others
    assert training_composition(f"dcgan:{tmp_path}", classes) is None  # no training.json
    (tmp_path / "training.json").write_text(json.dumps({"model": "clip", "steps": 3}))
    assert training_composition(f"dcgan:{tmp_path}", classes) is None  # a record without class counts


def test_command_prints_json(tiny_dcgan, tiny_clip_dir, capsys):
    code = main(["eval", "generator", "--generator", f"dcgan:{tiny_dcgan}", "--labeller", f"clip:{tiny_clip_dir}",
                 "--n", "12", "--format", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n"] == 12


def test_bad_sample_count_is_refused(tiny_dcgan, tiny_clip_dir):
    with pytest.raises(ConfigError):
        unguided_composition(f"dcgan:{tiny_dcgan}", f"clip:{tiny_clip_dir}", n=0)


def test_loader_options_reach_the_generator_and_the_record(tiny_dcgan, tiny_clip_dir, capsys):
    # The DCGAN family takes no options: an option must reach its loader (and be refused
    # there by name), not be dropped on the way.
    code = main(["eval", "generator", "--generator", f"dcgan:{tiny_dcgan}", "--labeller", f"clip:{tiny_clip_dir}",
                 "--n", "4", "--option", "num_inference_steps=50"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "num_inference_steps" in err[0]
    assert main(["eval", "generator", "--generator", f"dcgan:{tiny_dcgan}", "--option", "steps50"]) == 2
    assert "--option needs KEY=VALUE" in capsys.readouterr().err
    found = unguided_composition(f"dcgan:{tiny_dcgan}", f"clip:{tiny_clip_dir}", n=4, progress=False)
    assert found.to_dict()["options"] == {}


def test_the_result_goes_into_the_model_card_once(tiny_dcgan, tiny_clip_dir, capsys):
    card = tiny_dcgan / "card.md"
    card.write_text("# tiny\n\n- **Training**: 3 steps\n\n## Retrain\nrun it again\n")
    args = ["eval", "generator", "--generator", f"dcgan:{tiny_dcgan}", "--labeller", f"clip:{tiny_clip_dir}",
            "--n", "10", "--card", str(card)]
    assert main(args) == 0 and main([*args[:-3], "20", "--card", str(card)]) == 0
    text = card.read_text()
    assert text.count("## Unguided samples (measured)") == 1  # replaced, not appended twice
    assert text.startswith("# tiny\n\n- **Training**: 3 steps\n\n## Retrain\nrun it again\n")  # kept as it was
    assert "20 samples from the latent prior" in text and "| mountain |" in text and "| 0.750 |" in text
    assert "Total variation distance: **" in text
    capsys.readouterr()
    assert main([*args[:-1], str(tiny_dcgan / "missing.md")]) == 2
    assert "missing.md does not exist" in capsys.readouterr().err


def test_a_class_conditional_generator_is_checked_against_the_class_it_was_asked_for(tiny_dcgan, tiny_clip_dir):
    asked = asked_class_agreement(np.array([0, 1, 1, 0]), ["sea", "glacier"], ["sea", "glacier", "sea", "sea"],
                                  "the rule")
    assert asked["share"] == 0.75 and asked["n"] == 4 and asked["rule"] == "the rule"
    assert asked["ci"] == pytest.approx(list(proportion_confint(3, 4, method="wilson")))

    # The world's renderer draws exactly the class it is asked for, which its own classifier reads.
    found = unguided_composition("world-render", "classifier-world", n=30, seed=1, progress=False,
                                 second_labeller=None, fidelity=False)
    assert found.asked["n"] == 30 and found.asked["share"] >= 0.9 and "exact" in found.asked["rule"]
    assert found.to_dict()["asked_class"] == found.asked
    unconditional = unguided_composition(f"dcgan:{tiny_dcgan}", f"clip:{tiny_clip_dir}", n=8, progress=False,
                                         second_labeller=None, fidelity=False)
    assert unconditional.asked is None
