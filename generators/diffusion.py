"""Diffusion models (diffusers ``UNet2DModel``) as generators, sampled deterministically.

Two samplers, both of which add no noise after the start, so the image is a fixed,
differentiable function of the initial noise: that noise is the latent the search moves.

- ``sampler="ddim"`` (default): DDIM at eta = 0 (the scheduler config's x0 clipping kept).
- ``sampler="dpm-solver"``: DPM-Solver++ (2nd order multistep), a more accurate solver of the
  same ODE for the same number of UNet calls.

Two search spaces over the initial noise:

- ``space="noise"``: the raw initial noise, one block ``noise`` [C, H, W] ~ N(0, I).
- ``space="basis"``: ``n_basis`` weights over K fixed orthonormal noise directions (drawn
  from ``basis_seed``); the combination is rescaled to norm sqrt(C*H*W), the norm a draw
  from the prior has on average, so every weight vector maps onto the shell where the
  model's starting noise lives. K weights instead of C*H*W numbers keep the search small.

``num_inference_steps`` (default 20) trades fidelity for speed: each step is one UNet call.

A class-conditional UNet (``num_class_embeds``; artbias trains one with
``class_conditional``) adds a conditioning block ``class_logits`` [classes], as BigGAN's: a
normal prior whose ``softmax(logits / temperature)`` weighs the class embeddings, so a
random draw asks for one dominant class and the search can move between classes smoothly.
An artbias-trained UNet's last embedding means "no class"; with ``guidance_scale`` w != 1
each step is classifier-free guided, ``e_none + w (e_class - e_none)``, at two UNet calls.

``identity()["weights"]`` records the UNet's weights file (``diffusion_pytorch_model``
``.safetensors``, else ``.bin``, as diffusers picks them); a UNet saved in shards records the
``unet`` folder with one digest over all shards (``data.saved_model.weights_record``).
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.saved_model import load_error_reason, weights_record
from data.validation import check_finite_tensors, check_number
from generators.latents import LatentBlock, LatentSpace, classes_asked
from generators.protocol import Generator
from generators.training_record import read_record, world_class_names

SPACES = ("noise", "basis")
SAMPLERS = ("ddim", "dpm-solver")
DEFAULT_STEPS = 20
LOGIT_BOUND = 5.0


class WeightedClassEmbedding(torch.nn.Embedding):
    """A class embedding table that also takes class weights [B, num_embeddings] (a soft mix
    of classes, through which gradients reach the weights) besides class indices [B]; the
    same parameter, so a UNet's state dict is unchanged."""

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.is_floating_point():
            return labels.to(self.weight.dtype) @ self.weight
        return super().forward(labels)


class DiffusionGenerator(Generator):
    family = "diffusion"

    def __init__(
        self,
        unet,
        scheduler,
        *,
        name: str = "diffusion",
        num_inference_steps: int = DEFAULT_STEPS,
        space: str = "noise",
        n_basis: int = 64,
        basis_seed: int = 0,
        sampler: str = "ddim",
        class_names: tuple[str, ...] | None = None,
        null_class: bool = False,
        temperature: float = 0.1,
        guidance_scale: float = 1.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(device, dtype)
        if sampler not in SAMPLERS:
            raise ConfigError(f"diffusion sampler must be one of {SAMPLERS}, got {sampler!r}")
        if space not in SPACES:
            raise ConfigError(f"diffusion space must be one of {SPACES}, got {space!r}")
        if num_inference_steps <= 0:
            raise ConfigError(f"num_inference_steps must be positive, got {num_inference_steps}")
        if n_basis <= 0:
            raise ConfigError(f"n_basis must be positive, got {n_basis}")
        check_number(temperature, "temperature", above=0)
        check_number(guidance_scale, "guidance_scale", minimum=0)
        # (read with defaults: a UNet-like model's config need not name diffusers' class options)
        embeds = getattr(unet.config, "num_class_embeds", None)
        embed_type = getattr(unet.config, "class_embed_type", None)
        if embed_type is not None:
            raise ConfigError(f"UNet class_embed_type {embed_type!r} is not supported (only a num_class_embeds table)")
        self.n_classes = (embeds - 1 if null_class else embeds) if embeds else 0
        if guidance_scale != 1.0 and not null_class:
            raise ConfigError("guidance_scale needs a class-conditional UNet with a 'no class' embedding "
                              "(one artbias trained with class_conditional)")
        if class_names is not None and len(class_names) != self.n_classes:
            raise ConfigError(f"{len(class_names)} class names for a UNet of {self.n_classes} classes")
        self.class_names, self.null_class = class_names, null_class
        self.temperature, self.guidance_scale = float(temperature), float(guidance_scale)
        if embeds:
            table = unet.class_embedding
            unet.class_embedding = WeightedClassEmbedding(table.num_embeddings, table.embedding_dim)
            unet.class_embedding.weight = table.weight
        self.name = name
        self.unet = unet
        self.sampler = sampler
        self.scheduler = _sampling_scheduler(scheduler, sampler)
        self.scheduler.set_timesteps(num_inference_steps)
        self.num_inference_steps = num_inference_steps
        self.space = space
        size = unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        self.noise_shape = (unet.config.in_channels, height, width)
        self.image_size = height
        self.basis_seed = basis_seed
        if space == "noise":
            blocks = [LatentBlock("noise", self.noise_shape, low=-5.0, high=5.0)]
            self.basis = None
        else:
            if n_basis > math.prod(self.noise_shape):
                raise ConfigError(f"n_basis {n_basis} exceeds the noise dimension {math.prod(self.noise_shape)}")
            blocks = [LatentBlock("weights", (n_basis,), low=-4.0, high=4.0)]
            self.basis = _orthonormal_basis(n_basis, math.prod(self.noise_shape), basis_seed)
        if self.n_classes:
            blocks.append(LatentBlock("class_logits", (self.n_classes,), "normal", low=-LOGIT_BOUND,
                                      high=LOGIT_BOUND, conditioning=True))
        self.latent_space = LatentSpace(tuple(blocks))
        self.to(self.device, self.dtype)

    # -- latents -> initial noise ---------------------------------------------------------
    def initial_noise(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The starting noise [B, C, H, W] the sampler denoises."""
        if self.basis is None:
            return parts["noise"]
        weights = parts["weights"]
        basis = self.basis.to(weights.dtype)
        combined = weights @ basis  # [B, D]; the basis rows are orthonormal
        target = math.sqrt(basis.shape[1])
        combined = combined * (target / combined.norm(dim=1, keepdim=True).clamp_min(1e-8))
        return combined.reshape(-1, *self.noise_shape)

    # -- class conditioning -------------------------------------------------------------------
    def class_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Class logits [B, classes] -> weights over the embedding table [B, num_class_embeds]
        (rows sum to 1; the "no class" embedding, when there is one, gets 0)."""
        weights = torch.softmax(logits / self.temperature, dim=-1)
        return torch.nn.functional.pad(weights, (0, 1)) if self.null_class else weights

    def predict_noise(self, sample: torch.Tensor, t, classes: torch.Tensor | None) -> torch.Tensor:
        """The UNet's noise prediction, of the class weights ``classes`` and guided, if asked."""
        if classes is None:
            return self.unet(sample, t).sample
        if self.guidance_scale == 1.0:
            return self.unet(sample, t, class_labels=classes).sample
        none = torch.zeros_like(classes)
        none[:, -1] = 1.0  # the "no class" embedding
        both = self.unet(torch.cat([sample, sample]), t, class_labels=torch.cat([classes, none])).sample
        conditional, unconditional = both.chunk(2)
        return unconditional + self.guidance_scale * (conditional - unconditional)

    # -- the sampler ------------------------------------------------------------------------
    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        sample = self.initial_noise(parts)
        classes = self.class_weights(parts["class_logits"]) if self.n_classes else None
        self.scheduler.set_timesteps(self.num_inference_steps)  # a multistep solver's history starts afresh
        step_options = {"eta": 0.0} if self.sampler == "ddim" else {}
        for t in self.scheduler.timesteps:
            predicted_noise = self.predict_noise(sample, t, classes)
            sample = self.scheduler.step(predicted_noise, t, sample, **step_options).prev_sample
        images = sample.clamp(-1.0, 1.0)
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.unet}

    def to(self, device=None, dtype=None) -> DiffusionGenerator:
        from diffusers.utils import logging as diffusers_logging

        # diffusers warns on every dtype cast, even for models with no float32-only parts
        previous = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()
        try:
            super().to(device, dtype)
        finally:
            diffusers_logging.set_verbosity(previous)
        if self.basis is not None:  # a plain tensor: the base class only moves modules
            self.basis = self.basis.to(self.device)
        return self

    def settings(self) -> dict:
        return {
            "space": self.space,
            "n_var": self.latent_space.n_var,
            "num_inference_steps": self.num_inference_steps,
            "basis_seed": self.basis_seed if self.basis is not None else None,
            "sampler": self.sampler,
            "scheduler": type(self.scheduler).__name__,
        } | ({"classes": self.n_classes, "temperature": self.temperature, "guidance_scale": self.guidance_scale}
             if self.n_classes else {})

    intended_note = ("the class of the largest weight in the class mix the latent feeds the UNet "
                     "(known truth of what was asked, not of what was drawn)")

    def intended_classes(self, latents: torch.Tensor) -> list[str] | None:
        """The class of the largest weight in each latent's class mix (conditional world models)."""
        return classes_asked(self.latent_space, latents, self.class_names)


def _sampling_scheduler(scheduler, sampler: str):
    """The scheduler that samples: the loaded DDIM one, or DPM-Solver++ on the same noise schedule."""
    if sampler == "ddim":
        return scheduler
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(scheduler.config, algorithm_type="dpmsolver++", solver_order=2)


def _orthonormal_basis(k: int, dim: int, seed: int) -> torch.Tensor:
    """``k`` orthonormal rows of length ``dim``, the same for a seed on every machine."""
    draws = torch.randn(dim, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, _ = torch.linalg.qr(draws)  # columns orthonormal
    return q.T.contiguous().float()


# -- loading ---------------------------------------------------------------------------------
def load_unet_and_scheduler(path: Path | str):
    """A diffusers pipeline folder (``unet/`` + ``scheduler/``), a bare UNet folder, or a hub id."""
    from diffusers import DDIMScheduler, UNet2DModel

    local = Path(path)
    if local.is_dir():
        subfolder = "unet" if (local / "unet" / "config.json").is_file() else None
        if subfolder is None and not (local / "config.json").is_file():
            raise CheckpointError(f"{local} is neither a diffusers pipeline folder (unet/) nor a UNet2DModel folder (config.json)")
        try:
            with _quiet_pickle_fallback():
                unet = UNet2DModel.from_pretrained(local, subfolder=subfolder, low_cpu_mem_usage=False)
        except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as error:
            raise CheckpointError(f"cannot load a UNet2DModel from {local}: {load_error_reason(error)}") from None
        check_finite_tensors(unet.state_dict(), f"of the UNet in {local}")
        scheduler_dir = local / "scheduler" if (local / "scheduler").is_dir() else local
        if (scheduler_dir / "scheduler_config.json").is_file():
            scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(scheduler_dir))
        else:  # the DDPM training defaults (1000 steps, linear betas 1e-4..0.02)
            scheduler = DDIMScheduler()
        return unet, scheduler
    if local.is_file():
        raise CheckpointError(f"diffusion models load from a folder (diffusers layout), got the file {local}")
    if str(path).count("/") != 1:
        raise WeightsNotFoundError(f"diffusion model {path}: no such folder (nor a Hugging Face id 'org/name')")
    from data.weights.resolve import offline

    try:  # a hub id: from the Hugging Face cache, or downloaded when that is allowed
        with _quiet_pickle_fallback():
            unet = UNet2DModel.from_pretrained(str(path), local_files_only=offline(), low_cpu_mem_usage=False)
        config = DDIMScheduler.load_config(str(path), local_files_only=offline())
    except (OSError, ValueError) as error:
        raise WeightsNotFoundError(
            f"diffusion model {path!r} is not in the Hugging Face cache and could not be fetched "
            f"({load_error_reason(error)}); run 'artbias models pull' for a catalogue model or download it "
            "with huggingface_hub"
        ) from None
    check_finite_tensors(unet.state_dict(), f"of the UNet of {path}")
    return unet, DDIMScheduler.from_config(config)


class _DropPickleFallbackNotes(logging.Filter):
    """Drops diffusers' log lines about falling back from safetensors to a ``.bin`` file: it
    calls that "unsafe serialization", but its ``.bin`` loader uses ``weights_only=True``, so
    nothing in the file can run, and the note would only alarm (or mislead) a user."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "unsafe serialization" not in message and "An error occurred while trying to fetch" not in message


@contextmanager
def _quiet_pickle_fallback() -> Iterator[None]:
    note_filter = _DropPickleFallbackNotes()
    logger = logging.getLogger("diffusers.models.modeling_utils")
    logger.addFilter(note_filter)
    try:
        yield
    finally:
        logger.removeFilter(note_filter)


def load(
    path: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    num_inference_steps: int = DEFAULT_STEPS,
    space: str = "noise",
    n_basis: int = 64,
    basis_seed: int = 0,
    sampler: str = "ddim",
    temperature: float = 0.1,
    guidance_scale: float = 1.0,
    **unknown,
) -> DiffusionGenerator:
    """The family loader: a diffusers folder or hub id -> ``DiffusionGenerator``. A folder
    artbias trained records whether its UNet is class-conditional with a "no class" embedding
    (its ``training.json``), and the world classes its embeddings stand for."""
    if unknown:
        raise ConfigError(f"unknown diffusion options {sorted(unknown)}; known: num_inference_steps, space, "
                          "n_basis, basis_seed, sampler, temperature, guidance_scale")
    unet, scheduler = load_unet_and_scheduler(path)
    record = read_record(path) if Path(str(path)).is_dir() else None
    embeds = getattr(unet.config, "num_class_embeds", None) or 0
    null_class = embeds > 1 and bool(record and isinstance(record.get("config"), dict)
                                     and record["config"].get("class_conditional"))
    class_names = world_class_names(path, embeds - 1) if null_class else None
    generator = DiffusionGenerator(
        unet,
        scheduler,
        name=Path(str(path)).name,
        num_inference_steps=num_inference_steps,
        space=space,
        n_basis=n_basis,
        basis_seed=basis_seed,
        sampler=sampler,
        class_names=class_names,
        null_class=null_class,
        temperature=temperature,
        guidance_scale=guidance_scale,
        device=device,
        dtype=dtype,
    )
    generator.weights = unet_weights(path)
    return generator


def unet_weights(path: Path | str) -> dict:
    """``{"path", "sha256"}`` of the UNet weights a folder (or a cached hub id) holds."""
    folder = Path(path)
    if not folder.is_dir():
        folder = _hub_snapshot(str(path))
        if folder is None:
            return {"path": str(path), "sha256": None}
    if (folder / "unet" / "config.json").is_file():
        folder = folder / "unet"
    for suffix in (".safetensors", ".bin"):  # diffusers' preference; variants (x.fp16.bin) left out
        files = sorted(f for f in folder.glob(f"diffusion_pytorch_model*{suffix}") if f.name.count(".") == 1)
        if len(files) == 1:
            return weights_record(files[0])
        if files:
            return weights_record(folder, files)
    return {"path": str(folder), "sha256": None}


def _hub_snapshot(repo: str) -> Path | None:
    """The Hugging Face cache folder of ``repo``, or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss: the weights are not identifiable here
        return None
