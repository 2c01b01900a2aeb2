"""MiniGPT-5 training forward: the text loss of the LLM plus, where a sample ends in vokens, the diffusion loss of
the image decoder conditioned on the mapped voken states and the caption-feature loss (official weights in
`minigpt5_settings.LossSettings`). A mixin of `MiniGPT5` (`minigpt5.py`), which holds the parts it uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from minigpt4.models import vokens
from minigpt4.models.minigpt_base import causal_lm_loss


@dataclass
class TrainingDraws:
    """The random draws of one training forward; None = drawn here (tests and parity pass fixed ones).

    cfg: (N,) uniform values, one per voken row (dropped when < cfg_drop_prob); timesteps: (N,) long;
    noise, vae_eps: (N, C, h, w) standard normal."""

    cfg: Tensor | None = None
    timesteps: Tensor | None = None
    noise: Tensor | None = None
    vae_eps: Tensor | None = None


@dataclass
class Minigpt5Output:
    """Losses and the intermediates of one forward (shapes: B batch, L sequence, N voken rows)."""

    loss: Tensor
    text_loss: Tensor
    image_loss: Tensor | None = None
    caption_loss: Tensor | None = None
    inputs_embeds: Tensor | None = None  # (B, L, D)
    attention_mask: Tensor | None = None  # (B, L)
    labels: Tensor | None = None  # (B, L)
    logits: Tensor | None = None  # (B, L, V)
    last_hidden_state: Tensor | None = None  # (B, L, D)
    voken_index: Tensor | None = None  # (N, 2): (b, position of [IMG0] - 1)
    voken_states: Tensor | None = None  # (N, 8, D) after the CFG drop
    dropped: Tensor | None = None  # (N,) bool
    mapping_feature: Tensor | None = None  # (N, 77, W)
    caption_target: Tensor | None = None  # (N, 77, W)
    diffusion: Any = None  # image_decoder.DiffusionLoss

    def losses(self) -> dict[str, Tensor]:
        out = {"loss": self.loss, "text_loss": self.text_loss}
        if self.image_loss is not None:
            out["image_loss"] = self.image_loss
        if self.caption_loss is not None:
            out["caption_loss"] = self.caption_loss
        return out


class Minigpt5TrainingForward:
    """compute_losses / forward of `MiniGPT5`; the LLM, mapper and image decoder are the model's."""

    def compute_losses(self, samples: dict[str, Any], draws: TrainingDraws | None = None) -> Minigpt5Output:
        """samples: input_ids, attention_mask, labels (B, T); input_images: per-sample (n_b, 3, S, S) or None;
        output_image: (B, 3, H, W) in [-1, 1] (rows without vokens unused); captions: per-sample str or None."""
        draws = draws or samples.get("draws") or TrainingDraws()
        settings = self.loss_settings
        embeds, atts, labels = self.build_llm_inputs(
            samples["input_ids"], samples["attention_mask"], samples["labels"], samples.get("input_images")
        )
        logits, hidden = self.run_llm(embeds, atts)
        text_loss = causal_lm_loss(logits, labels)
        out = Minigpt5Output(
            loss=settings.text_weight * text_loss,
            text_loss=text_loss,
            inputs_embeds=embeds,
            attention_mask=atts,
            labels=labels,
            logits=logits,
            last_hidden_state=hidden,
        )
        index = vokens.voken_start_index(labels, self.first_voken_id)  # (N, 2)
        out.voken_index = index
        if index.shape[0] == 0 or self.image_decoder is None or samples.get("output_image") is None:
            return out  # official: no output image in the batch -> 0.01 * text loss only
        states = vokens.gather_voken_states(hidden, index, self.num_vokens)  # (N, 8, D)
        cfg = draws.cfg if draws.cfg is not None else torch.rand(index.shape[0])
        states, dropped = vokens.drop_conditions(states, cfg, settings.cfg_drop_prob)
        mapping = self.map_vokens(states)  # (N, 77, W)
        out.voken_states, out.dropped, out.mapping_feature = states, dropped, mapping

        decoder = self.image_decoder
        targets = samples["output_image"].to(self.device)[index[:, 0]]
        latents = decoder.encode_images(targets, draws.vae_eps)
        noise = draws.noise if draws.noise is not None else torch.randn_like(latents)
        steps = decoder.scheduler.config.num_train_timesteps
        timesteps = draws.timesteps if draws.timesteps is not None else torch.randint(0, steps, (len(index),))
        diffusion = decoder.diffusion_loss(
            latents, mapping, noise.to(latents), timesteps.to(latents.device).long(), settings.snr_gamma
        )
        out.diffusion, out.image_loss = diffusion, diffusion.loss
        out.loss = out.loss + settings.image_weight * diffusion.loss

        captions = samples.get("captions")
        if captions is not None and len(captions) and all(c is not None for c in captions):
            target = self.caption_targets([captions[int(b)] for b in index[:, 0]], dropped)
            out.caption_target = target
            out.caption_loss = F.mse_loss(mapping, target.to(mapping.dtype))
            out.loss = out.loss + settings.caption_weight * out.caption_loss
        return out

    def caption_targets(self, captions: Sequence[str], dropped: Tensor) -> Tensor:
        """CLIP features of each caption, the empty-text feature where the conditioning was dropped: (N, 77, W)."""
        decoder = self.image_decoder
        with torch.no_grad():
            empty = decoder.empty_text_feature()
            target = empty.expand(len(captions), -1, -1).clone()
            keep = (~dropped).nonzero().flatten().tolist()
            if keep:
                target[keep] = decoder.encode_text([captions[i] for i in keep]).to(target.dtype)
        return target

    def forward(self, samples: dict[str, Any], draws: TrainingDraws | None = None) -> dict[str, Tensor]:
        return self.compute_losses(samples, draws).losses()
