"""Bad input, command by command: each case exits 2 with ONE line on stderr that names the
problem (never a traceback), creates nothing and changes nothing.

Every case runs ``gallery.cli.main`` in this process. The inputs (damaged galleries, odd
images, poisoned weights, bad campaign files) are built once; before and after each case
every file under them and under the case's own folder is fingerprinted, so a case that
writes or loses anything fails. The size limits are the defaults (``data.validation.Limits``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

import duckdb
import pytest
from sample_gallery import SampleSpec, build_sample_gallery

from gallery.cli import main
from gallery.store import SCHEMA_VERSION, Store, utc_now

ZOO = Path(__file__).resolve().parents[1] / "data" / "zoo"
DEMO = Path(__file__).resolve().parents[1] / "gallery" / "campaigns" / "demo.toml"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# A campaign that would run, given a good gallery: the bad ones below change one thing each.
GOOD_CAMPAIGN = """
name = "probe"
prompts = ["a calm sea"]
generators = ["dcgan-world"]
labellers = ["classifier-world"]
seeds = 1
[search]
pop_size = 4
generations = 1
"""


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (its data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _campaign(folder: Path, name: str, text: str | bytes) -> None:
    path = folder / f"{name}.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def _poisoned_dcgan(folder: Path, poison) -> None:
    """A copy of ``dcgan-world`` whose first weight tensor went through ``poison``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(ZOO / "dcgan-world", folder)
    tensors = load_file(str(folder / "model.safetensors"))
    name = next(iter(sorted(tensors)))
    tensors[name] = poison(tensors[name])
    save_file(tensors, str(folder / "model.safetensors"))


def _pickled_biggan(folder: Path) -> None:
    """A BigGAN folder whose ``pytorch_model.bin`` pickles a function call (refused unread)."""
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    folder.mkdir()
    shutil.copy(ZOO / "biggan-world" / "config.json", folder / "config.json")
    torch.save({"weight": Payload()}, folder / "pytorch_model.bin")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every bad input the cases use, built once (never modified: each case checks that)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    sample = build_sample_gallery(root / "sample", SampleSpec(runs_per_prompt=2, baseline_samples=4, image_size=8))
    (root / "afile").write_text("just text\n")
    (root / "others").mkdir()  # a folder of someone's files: --force must never replace it
    (root / "others" / "keep.txt").write_text("mine\n")
    (root / "not-an-image.png").write_text("hello")
    (root / "huge.png").write_bytes(_png_header(20_000, 20_000))  # 400 megapixels
    (root / "truncated.png").write_bytes(next((sample / "images").rglob("*.png")).read_bytes()[:60])

    for name in ("zero", "junk", "text", "truncated", "foreign", "v99", "v0"):
        (root / f"g-{name}").mkdir()
    (root / "g-zero" / "gallery.duckdb").write_bytes(b"")
    (root / "g-junk" / "gallery.duckdb").write_bytes(hashlib.sha256(b"junk").digest() * 200)
    (root / "g-text" / "gallery.duckdb").write_text("not a database\n" * 100)
    data = (sample / "gallery.duckdb").read_bytes()
    (root / "g-truncated" / "gallery.duckdb").write_bytes(data[: max(300_000, len(data) // 10)])
    foreign = duckdb.connect(str(root / "g-foreign" / "gallery.duckdb"))
    foreign.execute("CREATE TABLE invoices (id INTEGER, amount DOUBLE)")
    foreign.close()
    shutil.rmtree(root / "g-v99")
    shutil.copytree(sample, root / "g-v99")
    with Store(root / "g-v99").write() as con:
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION + 97, utc_now()])
    duckdb.connect(str(root / "g-v0" / "gallery.duckdb")).close()  # a DuckDB file without tables
    shutil.copytree(sample, root / "g-outside")  # one artwork points at a file outside the gallery
    with Store(root / "g-outside").write() as con:
        con.execute("UPDATE artworks SET image_path = ? WHERE artwork_id = "
                    "(SELECT min(artwork_id) FROM artworks)", [str(root / "afile")])

    _poisoned_dcgan(root / "dcgan-nan", lambda t: t.float() * float("nan"))
    _poisoned_dcgan(root / "dcgan-int8", lambda t: t.to(dtype=__import__("torch").int8))
    _pickled_biggan(root / "biggan-pickle")

    campaigns = root / "campaigns"
    campaigns.mkdir()
    _campaign(campaigns, "good", GOOD_CAMPAIGN)
    bad = {
        "escape": GOOD_CAMPAIGN.replace('"a calm sea"', '"a calm \\u001b[31msea"'),
        "bell": GOOD_CAMPAIGN.replace('"a calm sea"', '{ text = "a calm sea", controls = ["a sea\\u0007"] }'),
        "newline": GOOD_CAMPAIGN.replace('"a calm sea"', '"a calm\\nsea"'),
        "long": GOOD_CAMPAIGN.replace('"a calm sea"', '"' + "sea " * 300 + '"'),
        "modifier": 'modifiers = ["", "an oil painting of {}\\u0000"]\n' + GOOD_CAMPAIGN,
        "prior-nan": GOOD_CAMPAIGN + "prior_weight = nan\n",
        "refine-inf": GOOD_CAMPAIGN + "refine_lr = inf\n",
        "realism-nan": GOOD_CAMPAIGN + "realism_threshold = nan\n",
        "pop-huge": GOOD_CAMPAIGN.replace("pop_size = 4", "pop_size = 100_000_000"),
        "augment-huge": GOOD_CAMPAIGN + "augmentations = 100_000\n",
        "baseline-huge": GOOD_CAMPAIGN + "[baseline]\nsamples = 10_000_000\nchunk = 64\n",
        "chunk-huge": GOOD_CAMPAIGN + "[baseline]\nsamples = 1000\nchunk = 10_000_000\n",
        "jobs-huge": GOOD_CAMPAIGN.replace("seeds = 1", "seeds = 90_000"),
    }
    for name, text in bad.items():
        _campaign(campaigns, name, text)
    _campaign(campaigns, "latin1", GOOD_CAMPAIGN.replace("a calm sea", "a calm s\xe9a").encode("latin-1"))
    return root


def _fingerprint(*folders: Path) -> dict[str, tuple]:
    """Every file and folder under ``folders``: its kind, size and sha256."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or path.is_dir():
                found[str(path)] = ("dir",)
            else:
                found[str(path)] = ("file", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


# (id, argv, what the one error line must say). {in} is the inputs folder, {tmp} the case's
# own empty folder, {out} a path in it that must not come to exist.
CASES = [
    # -- version, models -------------------------------------------------------------------------
    ("version-bogus-option", ["version", "--bogus"], "--bogus"),
    ("models-pull-unknown", ["models", "pull", "no-such-model"], "no-such-model"),
    ("models-verify-unknown", ["models", "verify", "no-such-model"], "no-such-model"),
    ("models-list-bad-kind", ["models", "list", "--kind", "toaster"], "toaster"),
    # -- data ------------------------------------------------------------------------------------
    ("world-n-huge", ["data", "world", "--out", "{out}", "--n", "1000000000"], "limit of 10,000"),
    ("world-n-float", ["data", "world", "--out", "{out}", "--n", "1e9"], "invalid int"),
    ("world-size-huge", ["data", "world", "--out", "{out}", "--n", "10", "--size", "100000"], "limit of 1,024"),
    ("world-test-fraction-nan", ["data", "world", "--out", "{out}", "--n", "10", "--test-fraction", "nan"], "finite"),
    ("world-test-fraction-one", ["data", "world", "--out", "{out}", "--n", "10", "--test-fraction", "1"], "< 1"),
    ("world-seed-negative", ["data", "world", "--out", "{out}", "--n", "10", "--seed", "-1"], "--seed"),
    ("world-seed-huge", ["data", "world", "--out", "{out}", "--n", "10", "--seed", str(10**23)], "--seed"),
    ("world-out-is-file", ["data", "world", "--out", "{in}/afile", "--n", "10"], "is a file"),
    ("world-out-under-file", ["data", "world", "--out", "{in}/afile/world", "--n", "10"], "is a file"),
    ("world-force-others", ["data", "world", "--out", "{in}/others", "--n", "10", "--force"], "even with --force"),
    ("sheet-size-huge", ["data", "sheet", "--out", "{out}", "--size", "4096", "--scale", "4"], "limit of 1,024"),
    ("check-missing", ["data", "check", "{tmp}/nowhere"], "does not exist"),
    ("check-file", ["data", "check", "{in}/afile"], "not a directory"),
    # -- generate ----------------------------------------------------------------------------------
    ("generate-n-huge", ["generate", "--generator", "dcgan-world", "--n", "100000000", "--out", "{out}"], "limit of 10,000"),
    ("generate-n-zero", ["generate", "--generator", "dcgan-world", "--n", "0", "--out", "{out}"], "--n"),
    ("generate-seed-huge", ["generate", "--generator", "dcgan-world", "--seed", str(10**23), "--out", "{out}"], "--seed"),
    ("generate-device-quantum", ["generate", "--generator", "dcgan-world", "--device", "quantum", "--out", "{out}"], "not a device"),
    ("generate-batch-zero", ["generate", "--generator", "dcgan-world", "--batch-size", "0", "--out", "{out}"], "--batch-size"),
    ("generate-option-nan", ["generate", "--generator", "biggan-world", "--option", "temperature=NaN", "--out", "{out}"], "finite"),
    ("generate-option-inf", ["generate", "--generator", "biggan-world", "--option", "truncation=Infinity", "--out", "{out}"], "finite"),
    ("generate-option-unknown", ["generate", "--generator", "ddpm-world", "--option", "sampler_steps=5", "--out", "{out}"], "unknown diffusion options"),
    ("generate-option-sampler", ["generate", "--generator", "ddpm-world", "--option", "sampler=euler", "--out", "{out}"], "sampler must be one of"),
    ("generate-option-bare", ["generate", "--generator", "dcgan-world", "--option", "space", "--out", "{out}"], "KEY=VALUE"),
    ("generate-out-is-file", ["generate", "--generator", "dcgan-world", "--out", "{in}/afile"], "is a file"),
    ("generate-out-under-file", ["generate", "--generator", "dcgan-world", "--out", "{in}/afile/x"], "is a file"),
    ("generate-unknown", ["generate", "--generator", "no-such-gan", "--out", "{out}"], "no-such-gan"),
    ("generate-nan-weights", ["generate", "--generator", "dcgan:{in}/dcgan-nan", "--n", "1", "--out", "{out}"], "NaN/inf"),
    ("generate-int8-weights", ["generate", "--generator", "dcgan:{in}/dcgan-int8", "--n", "1", "--out", "{out}"], "wrong kind"),
    ("generate-pickle-weights", ["generate", "--generator", "biggan:{in}/biggan-pickle", "--n", "1", "--out", "{out}"],
     "pickled Python objects"),
    # -- train -------------------------------------------------------------------------------------
    ("train-gan-size-huge", ["train", "gan", "--arch", "dcgan", "--data", "{in}/others", "--out", "{out}", "--size", "100000"],
     "limit of 1,024"),
    ("train-gan-device", ["train", "gan", "--arch", "dcgan", "--data", "{in}/others", "--out", "{out}", "--device", "quantum"],
     "not a device"),
    ("train-gan-seed", ["train", "gan", "--arch", "dcgan", "--data", "{in}/others", "--out", "{out}", "--seed", "-4"], "--seed"),
    ("train-gan-out-file", ["train", "gan", "--arch", "dcgan", "--data", "{in}/others", "--out", "{in}/afile"], "is a file"),
    ("train-ddpm-batch-huge", ["train", "ddpm", "--data", "{in}/others", "--out", "{out}", "--batch-size", "1000000000"],
     "limit of 4,096"),
    ("train-ddpm-device-cuda", ["train", "ddpm", "--data", "{in}/others", "--out", "{out}", "--device", "cuda:7"], "cuda"),
    ("train-clip-lr-nan", ["train", "clip", "--data", "{in}/others", "--out", "{out}", "--lr", "nan"], "finite"),
    ("train-clip-out-file", ["train", "clip", "--data", "{in}/others", "--out", "{in}/afile"], "is a file"),
    ("train-classifier-lr-inf", ["train", "classifier", "--arch", "resnet-small", "--data", "{in}/others", "--out", "{out}",
                                 "--lr", "inf"], "finite"),
    ("train-classifier-val-nan", ["train", "classifier", "--arch", "resnet-small", "--data", "{in}/others", "--out", "{out}",
                                  "--val-fraction", "nan"], "finite"),
    ("train-classifier-device", ["train", "classifier", "--arch", "resnet-small", "--data", "{in}/others", "--out", "{out}",
                                 "--device", "quantum"], "not a device"),
    ("train-classifier-force-others", ["train", "classifier", "--arch", "resnet-small", "--data", "{in}/others",
                                       "--out", "{in}/others", "--force", "--device", "cpu"], "even with --force"),
    # -- search ------------------------------------------------------------------------------------
    ("search-prompt-escape", ["search", "--generator", "dcgan-world", "--prompt", "a \x1b[31mred\x1b[0m sea", "--out", "{out}"],
     "U+001B"),
    ("search-prompt-bell", ["search", "--generator", "dcgan-world", "--prompt", "a sea\x07", "--out", "{out}"], "U+0007"),
    ("search-prompt-newline", ["search", "--generator", "dcgan-world", "--prompt", "a\nsea", "--out", "{out}"], "U+000A"),
    ("search-prompt-not-utf8", ["search", "--generator", "dcgan-world", "--prompt", "a s\udce9a", "--out", "{out}"], "UTF-8"),
    ("search-prompt-empty", ["search", "--generator", "dcgan-world", "--prompt", "   ", "--out", "{out}"], "empty"),
    ("search-prompt-long", ["search", "--generator", "dcgan-world", "--prompt", "sea " * 300, "--out", "{out}"],
     "limit is 1,000"),
    ("search-negative-control", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--negative", "x\x1b",
                                 "--out", "{out}"], "negative prompt"),
    ("search-template-no-slot", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--template", "a photo",
                                 "--out", "{out}"], "placeholder"),
    ("search-seed-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--seed", str(10**23), "--out", "{out}"],
     "--seed"),
    ("search-seed-negative", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--seed", "-1", "--out", "{out}"],
     "--seed"),
    ("search-pop-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--pop", "100000000", "--out", "{out}"],
     "limit of 4,096"),
    ("search-pop-float", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--pop", "1e8", "--out", "{out}"],
     "invalid int"),
    ("search-gens-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--gens", "1000000000", "--out", "{out}"],
     "limit of 1,000,000"),
    ("search-budget-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--budget", str(10**12),
                            "--out", "{out}"], "limit of 1,000,000"),
    ("search-augment-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--augment", "100000",
                             "--out", "{out}"], "limit of 64"),
    ("search-refine-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--refine-steps", "1000000000",
                            "--out", "{out}"], "limit of 10,000"),
    ("search-top-k-huge", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--top-k", "1000000",
                           "--out", "{out}"], "limit of 256"),
    ("search-realism-nan", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--realism-threshold", "nan",
                            "--out", "{out}"], "finite"),
    ("search-realism-inf", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--realism-threshold=-inf",
                            "--out", "{out}"], "finite"),
    ("search-anchor-nan", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--anchor-radius", "nan",
                           "--out", "{out}"], "anchor_radius must be a finite number"),
    ("search-anchor-cmaes", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--anchor-radius", "0.5",
                             "--algorithm", "cmaes", "--out", "{out}"], "not cmaes"),
    ("search-device-quantum", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--device", "quantum",
                               "--out", "{out}"], "not a device"),
    ("search-device-cuda", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--device", "cuda:9",
                            "--out", "{out}"], "cuda"),
    ("search-out-file", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/afile"], "is a file"),
    ("search-out-file-force", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/afile", "--force"],
     "is a file"),
    ("search-out-under-file", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/afile/x"],
     "is a file"),
    ("search-out-others", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/others"], "not empty"),
    ("search-force-others", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/others", "--force"],
     "even with --force"),
    ("search-force-gallery", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{in}/sample", "--force"],
     "even with --force"),
    ("search-unknown-clip", ["search", "--generator", "dcgan-world", "--prompt", "sea", "--clip", "no-such-clip",
                             "--out", "{out}"], "no-such-clip"),
    # -- eval, classify ----------------------------------------------------------------------------
    ("eval-clip-n-huge", ["eval", "clip", "--n", "1000000000"], "limit of 10,000"),
    ("eval-clip-seed", ["eval", "clip", "--seed", "-2"], "--seed"),
    ("eval-classifier-missing-data", ["eval", "classifier", "--data", "{tmp}/nowhere"], "nowhere"),
    ("eval-classifier-batch", ["eval", "classifier", "--data", "{in}/others", "--batch-size", "0"], "--batch-size"),
    ("eval-classifier-device", ["eval", "classifier", "--data", "{in}/others", "--device", "quantum"], "not a device"),
    ("eval-generator-n-huge", ["eval", "generator", "--generator", "dcgan-world", "--n", "100000000"], "limit of 10,000"),
    ("eval-generator-option-nan", ["eval", "generator", "--generator", "biggan-world", "--option", "temperature=NaN"],
     "finite"),
    ("eval-generator-seed", ["eval", "generator", "--generator", "dcgan-world", "--seed", str(2**40)], "--seed"),
    ("eval-generator-device", ["eval", "generator", "--generator", "dcgan-world", "--device", "cuda"], "cuda"),
    ("classify-huge-png", ["classify", "{in}/huge.png", "--format", "json"], "400,000,000 pixels"),
    ("classify-not-image", ["classify", "{in}/not-an-image.png", "--format", "json"], "not-an-image.png"),
    ("classify-truncated", ["classify", "{in}/truncated.png", "--format", "json"], "truncated.png"),
    ("classify-missing", ["classify", "{tmp}/missing.png", "--format", "json"], "no such file"),
    ("classify-batch-huge", ["classify", "{in}/afile", "--batch-size", "1000000000"], "limit of 4,096"),
    ("classify-device", ["classify", "{in}/afile", "--device", "quantum"], "not a device"),
    # -- bias --------------------------------------------------------------------------------------
    ("bias-zero-byte", ["bias", "--gallery", "{in}/g-zero"], "not a DuckDB database"),
    ("bias-junk", ["bias", "--gallery", "{in}/g-junk"], "not a DuckDB database"),
    ("bias-text", ["bias", "--gallery", "{in}/g-text"], "not a DuckDB database"),
    ("bias-truncated", ["bias", "--gallery", "{in}/g-truncated"], "damaged"),
    ("bias-foreign", ["bias", "--gallery", "{in}/g-foreign"], "not an artbias gallery"),
    ("bias-v99", ["bias", "--gallery", "{in}/g-v99"], f"schema version {SCHEMA_VERSION + 97}"),
    ("bias-no-tables", ["bias", "--gallery", "{in}/g-v0"], "no tables"),
    ("bias-gallery-file", ["bias", "--gallery", "{in}/afile"], "no gallery"),
    ("bias-resamples-huge", ["bias", "--gallery", "{in}/sample", "--resamples", "1000000000"], "limit of 100,000"),
    ("bias-resamples-few", ["bias", "--gallery", "{in}/sample", "--resamples", "5"], "at least 100"),
    ("bias-seed", ["bias", "--gallery", "{in}/sample", "--seed", "-1"], "--seed"),
    # -- gallery, export -----------------------------------------------------------------------------
    ("serve-junk", ["gallery", "--gallery", "{in}/g-junk"], "not a DuckDB database"),
    ("serve-foreign", ["gallery", "--gallery", "{in}/g-foreign"], "not an artbias gallery"),
    ("serve-v99", ["gallery", "--gallery", "{in}/g-v99"], f"schema version {SCHEMA_VERSION + 97}"),
    ("serve-missing", ["gallery", "--gallery", "{tmp}/nowhere"], "no gallery"),
    ("serve-port", ["gallery", "--gallery", "{in}/sample", "--port", "70000"], "--port"),
    ("export-zero-byte", ["gallery", "export", "--gallery", "{in}/g-zero", "--out", "{out}"], "not a DuckDB database"),
    ("export-junk", ["gallery", "export", "--gallery", "{in}/g-junk", "--out", "{out}"], "not a DuckDB database"),
    ("export-truncated", ["gallery", "export", "--gallery", "{in}/g-truncated", "--out", "{out}"], "damaged"),
    ("export-foreign", ["gallery", "export", "--gallery", "{in}/g-foreign", "--out", "{out}"], "not an artbias gallery"),
    ("export-v99", ["gallery", "export", "--gallery", "{in}/g-v99", "--out", "{out}"], f"schema version {SCHEMA_VERSION + 97}"),
    ("export-outside-image", ["gallery", "export", "--gallery", "{in}/g-outside", "--out", "{out}"], "images/ folder"),
    ("export-out-file", ["gallery", "export", "--gallery", "{in}/sample", "--out", "{in}/afile"], "is a file"),
    ("export-out-under-file", ["gallery", "export", "--gallery", "{in}/sample", "--out", "{in}/afile/x"], "is a file"),
    ("export-force-others", ["gallery", "export", "--gallery", "{in}/sample", "--out", "{in}/others", "--force"],
     "refusing to replace"),
    # -- campaign, demo ------------------------------------------------------------------------------
    ("campaign-escape", ["campaign", "run", "{in}/campaigns/escape.toml", "--gallery", "{out}"], "U+001B"),
    ("campaign-bell-control", ["campaign", "run", "{in}/campaigns/bell.toml", "--gallery", "{out}"], "U+0007"),
    ("campaign-newline", ["campaign", "run", "{in}/campaigns/newline.toml", "--gallery", "{out}"], "U+000A"),
    ("campaign-long-prompt", ["campaign", "run", "{in}/campaigns/long.toml", "--gallery", "{out}"], "limit is 1,000"),
    ("campaign-modifier-nul", ["campaign", "run", "{in}/campaigns/modifier.toml", "--gallery", "{out}"], "U+0000"),
    ("campaign-not-utf8", ["campaign", "run", "{in}/campaigns/latin1.toml", "--gallery", "{out}"], "not valid TOML"),
    ("campaign-prior-nan", ["campaign", "run", "{in}/campaigns/prior-nan.toml", "--gallery", "{out}"], "prior_weight"),
    ("campaign-refine-inf", ["campaign", "run", "{in}/campaigns/refine-inf.toml", "--gallery", "{out}"], "refine_lr"),
    ("campaign-realism-nan", ["campaign", "run", "{in}/campaigns/realism-nan.toml", "--gallery", "{out}"],
     "realism_threshold"),
    ("campaign-pop-huge", ["campaign", "run", "{in}/campaigns/pop-huge.toml", "--gallery", "{out}"], "limit of 4,096"),
    ("campaign-augment-huge", ["campaign", "run", "{in}/campaigns/augment-huge.toml", "--gallery", "{out}"], "limit of 64"),
    ("campaign-baseline-huge", ["campaign", "run", "{in}/campaigns/baseline-huge.toml", "--gallery", "{out}"],
     "limit of 10,000"),
    ("campaign-chunk-huge", ["campaign", "run", "{in}/campaigns/chunk-huge.toml", "--gallery", "{out}"], "limit of 1,024"),
    ("campaign-jobs-huge", ["campaign", "run", "{in}/campaigns/jobs-huge.toml", "--gallery", "{out}"], "planned jobs"),
    ("campaign-missing-config", ["campaign", "run", "{tmp}/none.toml", "--gallery", "{out}"], "does not exist"),
    ("campaign-workers-zero", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{out}", "--workers", "0"],
     "--workers"),
    ("campaign-workers-huge", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{out}", "--workers", "100000"],
     "limit of 64"),
    ("campaign-gallery-file", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/afile"], "is a file"),
    ("campaign-gallery-under-file", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/afile/g"],
     "is a file"),
    ("campaign-zero-byte", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/g-zero"],
     "not a DuckDB database"),
    ("campaign-junk", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/g-junk"], "not a DuckDB database"),
    ("campaign-truncated", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/g-truncated"], "damaged"),
    ("campaign-foreign", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/g-foreign"],
     "not an artbias gallery"),
    ("campaign-v99", ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{in}/g-v99"], f"schema version {SCHEMA_VERSION + 97}"),
    ("demo-port", ["demo", "--port", "0", "--gallery", "{out}"], "--port"),
    ("demo-workers", ["demo", "--no-serve", "--workers", "0", "--gallery", "{out}"], "--workers"),
    ("demo-gallery-truncated", ["demo", "--no-serve", "--gallery", "{in}/g-truncated"], "damaged"),
    # -- validate, campaign check, annotate --------------------------------------------------------
    ("validate-unknown-clip", ["validate", "--clip", "clip-wrld", "--out", "{out}"], "clip-wrld"),
    ("validate-bad-objective", ["validate", "--clip", "clip-world", "--objective", "best", "--out", "{out}"],
     "invalid choice"),
    ("validate-one-seed", ["validate", "--clip", "clip-world", "--seeds", "1", "--out", "{out}"], "seeds"),
    ("validate-unknown-generator", ["validate", "--clip", "clip-world", "--generators", "no-such-gan",
                                    "--out", "{out}"], "no-such-gan"),
    ("validate-rule-not-json", ["validate", "--clip", "clip-world", "--rule", "{in}/afile", "--out", "{out}"],
     "aesthetic rule"),
    ("validate-out-is-file", ["validate", "--clip", "clip-world", "--out", "{in}/afile"], "not a folder"),
    ("campaign-check-missing", ["campaign", "check", "{tmp}/nope.toml"], "does not exist"),
    ("annotate-import-missing", ["annotate", "import", "{tmp}/nope.csv", "--gallery", "{in}/sample"], "nope.csv"),
    ("annotate-export-no-gallery", ["annotate", "export", "--gallery", "{tmp}/nowhere", "--out", "{out}"],
     "no gallery"),
]


@pytest.fixture
def run_case(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARTBIAS_ALLOW_LARGE", raising=False)

    def run(argv: list[str]) -> str:
        case_dir = tmp_path / "case"
        case_dir.mkdir()
        out = case_dir / "out"
        argv = [a.replace("{in}", str(inputs)).replace("{tmp}", str(case_dir)).replace("{out}", str(out)) for a in argv]
        before = _fingerprint(inputs, case_dir)
        capsys.readouterr()
        code = main(argv)
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert code == 2, (code, captured.err[-2000:])
        assert len(lines) == 1, lines
        assert lines[0].startswith("artbias: error:"), lines
        assert "Traceback" not in captured.err + captured.out
        assert "weights_only=False" not in captured.err and "\x1b" not in captured.err and "\x07" not in captured.err
        assert not out.exists(), f"{out} was created"
        assert _fingerprint(inputs, case_dir) == before, "a file was written, changed or removed"
        return lines[0]

    return run


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_case, argv, expected):
    line = run_case(argv)
    assert expected.lower() in line.lower(), line


def test_the_suite_covers_every_command():
    from gallery.cli import build_parser

    commands = {" ".join(c[1][:2]) if c[1][0] in ("data", "models", "train", "eval") else c[1][0] for c in CASES}
    commands |= {"gallery export" for c in CASES if c[1][:2] == ["gallery", "export"]}
    expected = {"version", "data world", "data sheet", "data check", "models pull", "models verify", "models list",
                "generate", "train gan", "train ddpm", "train clip", "train classifier", "search", "eval clip",
                "eval classifier", "eval generator", "classify", "bias", "gallery", "gallery export", "campaign",
                "demo"}
    assert expected <= commands, expected - commands
    assert len(CASES) >= 80
    assert build_parser()  # the command line still builds with every option


@pytest.mark.skipif(IS_ROOT, reason="root writes through read-only permissions")
@pytest.mark.parametrize("argv", [
    ["generate", "--generator", "dcgan-world", "--n", "1", "--out", "{ro}/out"],
    ["gallery", "export", "--gallery", "{in}/sample", "--out", "{ro}/out"],
    ["campaign", "run", "{in}/campaigns/good.toml", "--gallery", "{ro}/gallery"],
    ["search", "--generator", "dcgan-world", "--prompt", "sea", "--out", "{ro}/out"],
    ["data", "world", "--out", "{ro}/out", "--n", "10"],
])
def test_a_read_only_place_is_refused_before_any_work(inputs, tmp_path, capsys, argv):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        argv = [a.replace("{in}", str(inputs)).replace("{ro}", str(read_only)) for a in argv]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "read-only" in err[0], err
        assert not any(read_only.iterdir())
    finally:
        read_only.chmod(0o755)


def test_allow_large_lifts_a_limit(run_case, capsys):
    """Over the default limit the command is refused; with --allow-large it goes on to the
    next check (here: a prompt that is still refused), so the limit alone was lifted."""
    line = run_case(["search", "--generator", "dcgan-world", "--prompt", "sea\x07", "--pop", "5000", "--out", "{out}",
                     "--allow-large"])
    assert "U+0007" in line and "limit" not in line


def test_disk_full_during_a_campaign_loses_nothing(inputs, tmp_path, capsys, monkeypatch):
    """A PNG write that finds the disk full stops the campaign with one line; the gallery
    keeps every earlier row and image, and gains no row and no file without one."""
    from datetime import datetime

    import gallery.campaign
    import gallery.executor
    from gallery.jobs import Artwork, JobResult

    target = tmp_path / "gallery"
    shutil.copytree(inputs / "sample", target)
    before = Store(target).read("SELECT artwork_id FROM artworks ORDER BY 1")["artwork_id"].tolist()
    images_before = sorted(p.name for p in (target / "images").rglob("*.png"))

    class Finished:  # jobs "run" instantly: the test is about recording their results
        def describe(self) -> str:
            return "instant"

        def map(self, jobs):
            now = datetime(2025, 1, 1)
            for job in jobs:
                png = _png_header(8, 8)
                sha = hashlib.sha256(png).hexdigest()
                artwork = Artwork(0, "chosen", 0, png, sha, f"images/{sha[:2]}/{sha}.png", 0.5, None, [0.0])
                yield JobResult(job, "done", now, now, 0.1, artworks=[artwork])

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(gallery.executor, "make_executor", lambda *args, **kwargs: Finished())
    monkeypatch.setattr(gallery.campaign, "write_png", disk_full)
    code = main(["campaign", "run", str(inputs / "campaigns" / "good.toml"), "--gallery", str(target), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err
    store = Store(target)
    assert store.read("SELECT artwork_id FROM artworks ORDER BY 1")["artwork_id"].tolist() == before
    assert store.read("SELECT count(*) AS n FROM runs WHERE campaign_id = 'probe'")["n"].iloc[0] == 0
    assert sorted(p.name for p in (target / "images").rglob("*.png")) == images_before


def test_weights_errors_never_advise_unsafe_loading(inputs):
    """PyTorch's refusal suggests ``weights_only=False``; artbias's message says why the file
    was refused instead, and nothing in the file ran."""
    from data.errors import CheckpointError
    from data.saved_model import read_tensors

    with pytest.raises(CheckpointError) as refused:
        read_tensors(inputs / "biggan-pickle" / "pytorch_model.bin")
    message = str(refused.value)
    assert "pickled Python objects" in message and "print" in message
    assert "weights_only" not in message and "will likely succeed" not in message and "\x1b" not in message


def test_all_nan_and_integer_weights_do_not_load(inputs):
    from data.errors import CheckpointError
    from generators.registry import load_generator

    with pytest.raises(CheckpointError, match="NaN/inf"):
        load_generator(f"dcgan:{inputs / 'dcgan-nan'}")
    with pytest.raises(CheckpointError, match="wrong kind"):
        load_generator(f"dcgan:{inputs / 'dcgan-int8'}")


def test_nan_latents_are_refused_not_drawn_black():
    import torch

    from data.errors import ConfigError
    from generators.registry import load_generator

    generator = load_generator("dcgan-world")
    latents = generator.latent_space.sample(2, torch.Generator().manual_seed(0))
    latents[1, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        generator.generate(latents)


def test_a_search_result_is_strict_json(tmp_path):
    """NaN never reaches result.json (JSON has no NaN); a later --force replaces the result."""
    import json

    import numpy as np
    import torch

    from generators.registry import load_generator

    result = main(["search", "--generator", "dcgan-world", "--prompt", "a calm sea", "--pop", "4", "--gens", "1",
                   "--top-k", "1", "--out", str(tmp_path / "r"), "--quiet"])
    assert result == 0
    text = (tmp_path / "r" / "result.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in result.json"))
    assert json.loads(text)["anchor"] is None
    anchored = tmp_path / "anchored"
    assert main(["search", "--generator", "dcgan-world", "--prompt", "a calm sea", "--pop", "4", "--gens", "1",
                 "--top-k", "1", "--anchor-radius", "0.5", "--seed", "2", "--out", str(anchored), "--quiet"]) == 0
    record = json.loads((anchored / "result.json").read_text())
    # the anchor is the seed's own draw, the one `artbias generate --n 1 --seed 2` paints
    assert record["settings"]["anchor_radius"] == 0.5
    expected = load_generator("dcgan-world").latent_space.sample(1, torch.Generator().manual_seed(2))[0]
    assert np.allclose(record["anchor"], expected.numpy())
    assert main(["search", "--generator", "dcgan-world", "--prompt", "a calm sea", "--pop", "4", "--gens", "1",
                 "--top-k", "1", "--out", str(tmp_path / "r"), "--quiet", "--force"]) == 0


def test_the_campaign_preflight_refuses_a_truncated_gallery_before_writing(inputs, tmp_path):
    """A truncated gallery.duckdb that DuckDB still opens is read whole before a campaign
    writes: no campaign row, no PNG is added to it."""
    from gallery.campaign import check_gallery
    from gallery.store import GalleryError

    target = tmp_path / "g"
    shutil.copytree(inputs / "g-truncated", target)
    before = _fingerprint(target)
    with pytest.raises(GalleryError, match="damaged"):
        check_gallery(Store(target))
    assert _fingerprint(target) == before


def test_stored_control_characters_reach_the_terminal_escaped(inputs, tmp_path, capsys):
    """A prompt stored by an older artbias with ESC and BEL in it: `artbias bias` prints it
    with those characters escaped, so the report cannot recolour or beep the terminal."""
    target = tmp_path / "gallery"
    shutil.copytree(inputs / "sample", target)
    with Store(target).write() as con:
        con.execute("UPDATE runs SET prompt = ?, full_prompt = ? WHERE prompt = 'a calm sea'",
                    ["a calm \x1b[31msea\x07", "a calm \x1b[31msea\x07"])
    assert main(["bias", "--gallery", str(target), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31msea\\x07" in out
