"""The image decoder behind MiniGPT-5's output mapper: conditioning states in, a diffusion loss or images out.

`ImageDecoder` is the interface MiniGPT-5 uses; `StableDiffusionDecoder` implements it with diffusers parts read
from a local Stable-Diffusion folder (the layout `StableDiffusionPipeline.save_pretrained` writes: `unet/`, `vae/`,
`text_encoder/`, `tokenizer/`, `scheduler/`). SD-2.1-base is the official one; any SD-family folder whose UNet
cross-attention width equals the mapper width plugs in. All parts are frozen. Nothing is downloaded: a folder with
configs but no weight files builds randomly initialised parts (tiny test assets, the meta-device manifest).

Official training arithmetic (`model.py:compute_image_loss`): latents = VAE posterior sample x scaling_factor;
noisy = scheduler.add_noise(latents, noise, t); MSE(UNet(noisy, t, conditioning), noise) per sample, weighted by
Min-SNR min(SNR, gamma) / SNR when gamma is set, then averaged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from minigpt4.common.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors",
                "pytorch_model.bin")  # fmt: skip


@dataclass
class DiffusionLoss:
    """loss: scalar; the rest are (N, ...) intermediates kept for tests and parity."""

    loss: Tensor
    latents: Tensor
    noisy_latents: Tensor
    model_pred: Tensor
    snr: Tensor | None


@dataclass
class DecodedImages:
    images: list[Any]  # PIL images, one per conditioning row
    latents: Tensor  # (N, C, h, w) final latents divided by the VAE scaling factor
    image_array: Tensor  # (N, H, W, 3) uint8


class ImageDecoder(nn.Module):
    """What MiniGPT-5 needs from an image generator."""

    @property
    def conditioning_width(self) -> int:
        raise NotImplementedError

    def encode_images(self, images: Tensor, eps: Tensor | None = None) -> Tensor:
        """images: (N, 3, H, W) in [-1, 1] -> latents (N, C, h, w), already scaled."""
        raise NotImplementedError

    def diffusion_loss(self, latents: Tensor, conditioning: Tensor, noise: Tensor, timesteps: Tensor,
                       snr_gamma: float | None) -> DiffusionLoss:  # fmt: skip
        raise NotImplementedError

    def encode_text(self, texts: list[str]) -> Tensor:
        """Caption features in the conditioning space: (N, 77, W)."""
        raise NotImplementedError

    def generate(self, conditioning: Tensor, negative: Tensor, **options: Any) -> DecodedImages:
        raise NotImplementedError


def _has_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in WEIGHT_NAMES)


def check_sd_folder(path: Path) -> None:
    missing = [part for part in ("unet", "vae", "scheduler") if not (path / part).is_dir()]
    if missing:
        raise ConfigError(
            f"model.sd_model={str(path)!r} is not a Stable-Diffusion folder: missing {', '.join(missing)}/ "
            "(expected the layout of StableDiffusionPipeline.save_pretrained: unet/ vae/ text_encoder/ "
            "tokenizer/ scheduler/); set model.sd_model to the local stable-diffusion-2-1-base folder"
        )


class StableDiffusionDecoder(ImageDecoder):
    """Frozen UNet + VAE + CLIP text encoder + noise scheduler of one local SD folder."""

    def __init__(
        self, path: str | Path, dtype: torch.dtype = torch.float32, load_weights: bool = True
    ) -> None:
        super().__init__()
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from diffusers.schedulers import SchedulerMixin

        path = Path(path).expanduser()
        check_sd_folder(path)
        self.path = path
        self.unet = self._load(UNet2DConditionModel, path / "unet", dtype, load_weights)
        self.vae = self._load(AutoencoderKL, path / "vae", dtype, load_weights)
        self.text_encoder = self._load_text_encoder(path / "text_encoder", dtype, load_weights)
        self.tokenizer = self._load_tokenizer(path / "tokenizer")
        scheduler_cls = self._scheduler_class(path / "scheduler")
        self.scheduler: SchedulerMixin = scheduler_cls.from_pretrained(str(path), subfolder="scheduler")
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:
                module.requires_grad_(False)
                module.eval()
        self._empty_text: Tensor | None = None
        self._pipeline = None

    # -- construction --------------------------------------------------------------------

    @staticmethod
    def _load(cls, folder: Path, dtype: torch.dtype, load_weights: bool) -> nn.Module:
        if load_weights and _has_weights(folder):
            return cls.from_pretrained(str(folder), torch_dtype=dtype)
        if load_weights:
            logger.warning("%s holds no weights: %s starts with RANDOM weights", folder, cls.__name__)
        module = cls.from_config(cls.load_config(str(folder)))
        return module if dtype == torch.float32 else module.to(dtype)

    @staticmethod
    def _load_text_encoder(folder: Path, dtype: torch.dtype, load_weights: bool) -> nn.Module | None:
        from transformers import CLIPTextConfig, CLIPTextModel

        if not (folder / "config.json").is_file():
            return None  # a decoder without a text encoder: no caption loss
        if load_weights and _has_weights(folder):
            return CLIPTextModel.from_pretrained(str(folder), dtype=dtype)
        if load_weights:
            logger.warning("%s holds no weights: the CLIP text encoder starts with RANDOM weights", folder)
        return CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder))).to(dtype)

    @staticmethod
    def _load_tokenizer(folder: Path):
        if not (folder / "vocab.json").is_file():
            return None
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(str(folder))

    @staticmethod
    def _scheduler_class(folder: Path):
        import json

        import diffusers

        name = json.loads((folder / "scheduler_config.json").read_text()).get("_class_name", "PNDMScheduler")
        cls = getattr(diffusers, name, None)
        if cls is None:
            raise ConfigError(
                f"{folder}/scheduler_config.json names scheduler {name!r}, unknown to diffusers"
            )
        return cls

    def train(self, mode: bool = True) -> StableDiffusionDecoder:
        super().train(mode)
        for module in (self.unet, self.vae, self.text_encoder):  # frozen: always in eval mode
            if module is not None:
                module.eval()
        return self

    # -- sizes ---------------------------------------------------------------------------

    @property
    def conditioning_width(self) -> int:
        return int(self.unet.config.cross_attention_dim)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """The default output size: unet.sample_size x the VAE down-sampling factor (SD-2.1-base: 512)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def prediction_type(self) -> str:
        return str(self.scheduler.config.get("prediction_type", "epsilon"))

    # -- training ------------------------------------------------------------------------

    def vae_moments(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) -> posterior moments (N, 2C, h, w) (after quant_conv)."""
        vae = self.vae
        moments = vae.encoder(images.to(vae.dtype))
        if getattr(vae, "quant_conv", None) is not None:
            moments = vae.quant_conv(moments)
        return moments

    def encode_images(self, images: Tensor, eps: Tensor | None = None, generator=None) -> Tensor:
        """Posterior sample mean + std * eps (eps ~ N(0, 1) unless given), times the scaling factor."""
        mean, logvar = torch.chunk(self.vae_moments(images), 2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return (mean + std * eps.to(mean)) * self.scaling_factor

    def snr(self, timesteps: Tensor) -> Tensor:
        """alpha_bar / (1 - alpha_bar) at each timestep, as (sqrt(a) / sqrt(1 - a))^2 in fp32 (official)."""
        alphas_cumprod = self.scheduler.alphas_cumprod.to(timesteps.device)
        alpha = alphas_cumprod[timesteps].float() ** 0.5
        sigma = (1.0 - alphas_cumprod[timesteps]).float() ** 0.5
        return (alpha / sigma) ** 2

    def diffusion_loss(self, latents: Tensor, conditioning: Tensor, noise: Tensor, timesteps: Tensor,
                       snr_gamma: float | None) -> DiffusionLoss:  # fmt: skip
        """latents, noise: (N, C, h, w); conditioning: (N, 77, W); timesteps: (N,) long."""
        noisy = self.scheduler.add_noise(latents, noise.to(latents), timesteps)
        model_pred = self.unet(
            noisy, timesteps, encoder_hidden_states=conditioning.to(self.unet.dtype)
        ).sample
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":  # ours: SD-2.x 768-v folders; official handles epsilon
            target = self.scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise ConfigError(f"{self.path}: prediction_type {self.prediction_type!r} is not supported")
        per_sample = ((model_pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))  # (N,)
        snr = None
        if snr_gamma:
            snr = self.snr(timesteps)
            weight = snr.clamp(max=snr_gamma)
            weight = weight / (snr + 1) if self.prediction_type == "v_prediction" else weight / snr
            per_sample = per_sample * weight
        return DiffusionLoss(per_sample.mean(), latents, noisy, model_pred, snr)

    def tokenize_text(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        if self.tokenizer is None or self.text_encoder is None:
            raise CheckpointError(
                f"{self.path}: caption features need tokenizer/ and text_encoder/ in the SD folder"
            )
        tokens = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = self.text_encoder.device
        return tokens.input_ids.to(device), tokens.attention_mask.to(device)

    def encode_text(self, texts: list[str]) -> Tensor:
        """CLIP last hidden states (N, 77, W); the padding is masked (official `encode_caption`)."""
        input_ids, attention_mask = self.tokenize_text(texts)
        return self.text_encoder(input_ids, attention_mask=attention_mask)[0]

    def empty_text_feature(self) -> Tensor:
        """encode_text([""]) (1, 77, W), computed once (official buffer `empty_text_feature`)."""
        if self._empty_text is None:
            with torch.no_grad():
                self._empty_text = self.encode_text([""])
        return self._empty_text

    # -- inference -----------------------------------------------------------------------

    def pipeline(self):
        """diffusers StableDiffusionPipeline over these parts (no safety checker, no feature extractor)."""
        if self._pipeline is None:
            from diffusers import StableDiffusionPipeline

            self._pipeline = StableDiffusionPipeline(
                vae=self.vae,
                text_encoder=self.text_encoder,
                tokenizer=self.tokenizer,
                unet=self.unet,
                scheduler=self.scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
            self._pipeline.set_progress_bar_config(disable=True)
        return self._pipeline

    @torch.no_grad()
    def generate(
        self,
        conditioning: Tensor,
        negative: Tensor,
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
        height: int | None = None,
        width: int | None = None,
        latents: Tensor | None = None,
        generator: torch.Generator | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> DecodedImages:
        """conditioning: (N, 77, W) prompt embeds; negative: (N or 1, 77, W). Classifier-free guidance through
        `StableDiffusionPipeline(prompt_embeds=..., negative_prompt_embeds=...)` (official), decoded here.
        on_step(done, total) is called after each denoising step (progress bars in the demo)."""
        dtype = self.unet.dtype
        step_end = None
        if on_step is not None:

            def step_end(pipeline, index, timestep, tensors):
                on_step(index + 1, pipeline.num_timesteps)  # PNDM takes one step more
                return tensors

        if negative.shape[0] != conditioning.shape[0]:
            negative = negative.expand(conditioning.shape[0], -1, -1)
        final = self.pipeline()(
            prompt_embeds=conditioning.to(dtype),
            negative_prompt_embeds=negative.to(dtype),
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps,
            height=height or self.image_size,
            width=width or self.image_size,
            latents=None if latents is None else latents.to(dtype),
            generator=generator,
            output_type="latent",
            callback_on_step_end=step_end,
        ).images
        unscaled = final / self.scaling_factor
        decoded = self.vae.decode(unscaled.to(self.vae.dtype)).sample  # (N, 3, H, W) in [-1, 1]
        images = self.pipeline().image_processor.postprocess(decoded.float(), output_type="pil")
        array = torch.stack([torch.from_numpy(np.asarray(image).copy()) for image in images])
        return DecodedImages(images=images, latents=unscaled, image_array=array)
