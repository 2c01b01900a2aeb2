"""MiniGPT-5 (`minigpt5`): MiniGPT-4 (Vicuna v0, frozen EVA + Q-Former + llama_proj) that also answers with images.

Eight generative tokens `[IMG0]`..`[IMG7]` ("vokens") are added to the LLM; their last-layer hidden states go
through the output mapper (`output_mapper.py`) into the conditioning space of a frozen image decoder
(`image_decoder.py`, Stable Diffusion 2.1-base officially). Stage 1 trains the new vocabulary rows and the mapper;
stage 2 adds LoRA (peft, embed/lm_head as modules to save) and trains it with the mapper transformer.

State-dict names: the MiniGPT-4 parts keep their names (`llama_model`, `llama_proj`, ...); the official Lightning
module prefixes them with `model.`, and holds `fc`, `t2i_decoder_prompt`, `llm_to_t2i_mapping` at its top level,
which are ours under `output_mapper.` (`lightning_key` / `our_key` in `checkpoint.py` map both ways).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.registry import registry
from minigpt4.models import vokens
from minigpt4.models.builder_args import base_kwargs
from minigpt4.models.checkpoint import (
    LoadReport,
    lightning_key,
    load_into,
    our_key,
    read_state_dict,
)
from minigpt4.models.generation import GenerationResult
from minigpt4.models.image_decoder import ImageDecoder, StableDiffusionDecoder
from minigpt4.models.llm import LoraSettings, parse_dtype
from minigpt4.models.minigpt4 import MiniGPT4, load_pretrained_parts, model_type_table
from minigpt4.models.minigpt_base import causal_lm_loss
from minigpt4.models.options import as_str_tuple, cfg_get, resolve_path
from minigpt4.models.output_mapper import OutputMapper, OutputMapperConfig
from minigpt4.models.qformer import QFormerConfig

logger = logging.getLogger(__name__)

IMAGE_DECODERS = {"stable_diffusion": StableDiffusionDecoder}
# official stop words: the two tokenisations of "###" in the Vicuna vocabulary
OFFICIAL_STOP_IDS = ((835,), (2277, 29937))


@dataclass(frozen=True)
class LossSettings:
    """Official: loss = 0.01 text + 1.0 image (+ 0.1 caption when every sample has a caption); Min-SNR gamma 5;
    the voken states of a sample are zeroed with probability 0.1 (classifier-free guidance)."""

    text_weight: float = 0.01
    image_weight: float = 1.0
    caption_weight: float = 0.1
    snr_gamma: float | None = 5.0
    cfg_drop_prob: float = 0.1


@dataclass(frozen=True)
class Minigpt5Lora:
    """Stage-2 LoRA (official r 8, alpha 16, q/v, dropout 0.05, embed/lm_head saved whole). r=0: no LoRA."""

    r: int = 0
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    modules_to_save: tuple[str, ...] = ("lm_head", "embed_tokens")


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


@dataclass
class VokenTrace:
    """One generation run. sequences: (B, 1 + T) in the official layout (a BOS placeholder first, then the
    sampled ids; the 8-voken step records only [IMG0]); step_states: last-layer states of every LLM call
    [(B, L, D), (B, k, D), ...]; voken_states: (B, 8, D), zero where has_image is False; in_nucleus: per step,
    whether each row's token was inside the top-p set (always True when sampled; a check when forced)."""

    sequences: Tensor
    step_states: list[Tensor]
    voken_states: Tensor
    has_image: Tensor
    finished: Tensor
    lengths: Tensor  # (B,) new ids of each row up to and including its stop
    in_nucleus: list[Tensor] = field(default_factory=list)


@registry.register_model("minigpt5")
class MiniGPT5(MiniGPT4):
    PRETRAINED_MODEL_CONFIG_DICT = model_type_table("minigpt5")

    def __init__(
        self,
        *,
        image_decoder: ImageDecoder | None,
        mapper: OutputMapperConfig | None = None,
        num_vokens: int = vokens.NUM_VOKENS,
        lora: Minigpt5Lora | None = None,
        losses: LossSettings | None = None,
        decay_frozen_rows: bool = True,
        **minigpt4: Any,
    ) -> None:
        super().__init__(**minigpt4)
        self.num_vokens = int(num_vokens)
        self.lora = lora or Minigpt5Lora()
        self.loss_settings = losses or LossSettings()
        # official AdamW decays the frozen vocabulary rows; False keeps them fixed (see optimizer_param_groups)
        self.decay_frozen_rows = bool(decay_frozen_rows)
        self.llama_proj.requires_grad_(False)  # MiniGPT-5 keeps MiniGPT-4's projection frozen

        base_vocab = self.llama_model.get_input_embeddings().weight.shape[0]
        if self.llama_tokenizer is not None:
            self.token_ids = vokens.add_voken_tokens(self.llama_tokenizer, self.num_vokens)
        else:  # no tokenizer (meta-device manifest): the ids the tokenizer would give
            self.token_ids = {t: base_vocab + i for i, t in enumerate(vokens.new_tokens(self.num_vokens))}
        self.num_new_tokens = len(self.token_ids)
        vokens.resize_with_mean_rows(self.llama_model, base_vocab + self.num_new_tokens)
        self._make_new_rows_trainable()

        mapper = mapper or OutputMapperConfig(llm_width=self.llama_model.config.hidden_size)
        self.output_mapper = OutputMapper(mapper)
        if self.lora.r > 0:  # stage 2: fc and the queries stay as stage 1 left them
            self.output_mapper.fc.requires_grad_(False)
            self.output_mapper.t2i_decoder_prompt.requires_grad_(False)
        self.image_decoder = image_decoder
        if image_decoder is not None and image_decoder.conditioning_width != mapper.width:
            raise ConfigError(
                f"the image decoder conditions on width {image_decoder.conditioning_width} but the output mapper "
                f"produces {mapper.width}: use an SD folder whose unet cross_attention_dim is {mapper.width} "
                "or set model.mapper_width to match"
            )

    # -- construction --------------------------------------------------------------------

    @property
    def first_voken_id(self) -> int:
        return self.token_ids["[IMG0]"]

    @property
    def image_token_id(self) -> int:
        return self.token_ids[vokens.IMAGE_TOKEN]

    @property
    def voken_ids(self) -> list[int]:
        return [self.token_ids[t] for t in vokens.voken_tokens(self.num_vokens)]

    def vocabulary_weights(self) -> list[nn.Parameter]:
        """The trainable vocabulary matrices: embed_tokens and lm_head (their modules_to_save copies with LoRA)."""
        return [p for n, p in self.llama_model.named_parameters() if p.requires_grad and _is_vocab_key(n)]

    def _make_new_rows_trainable(self) -> None:
        if self.lora.r > 0:
            self.llama_model = apply_minigpt5_lora(self.llama_model, self.lora)
        else:
            for module in (self.llama_model.get_input_embeddings(), self.llama_model.get_output_embeddings()):
                module.weight.requires_grad_(True)
        for weight in self.vocabulary_weights():
            vokens.mask_gradient_rows(weight, self.num_new_tokens)

    def optimizer_param_groups(self, lr: float, weight_decay: float, mapper_lr: float | None = None
                               ) -> list[dict[str, Any]]:  # fmt: skip
        """Official groups: the MLLM trainables at lr; fc/mapper/queries at mapper_lr (stage 1: 10x lr). With
        decay_frozen_rows=False the vocabulary matrices get weight_decay 0 and `NewRowsOnlyDecay` (installed by
        `install_optimizer_hooks`) decays their new rows only."""
        vocab = self.vocabulary_weights()
        llm_other = [
            p for p in self.llama_model.parameters() if p.requires_grad and not any(p is v for v in vocab)
        ]
        groups = []
        if self.decay_frozen_rows:
            groups.append({"params": llm_other + vocab, "lr": lr, "weight_decay": weight_decay})
        else:
            groups.append({"params": llm_other, "lr": lr, "weight_decay": weight_decay})
            groups.append({"params": vocab, "lr": lr, "weight_decay": 0.0, "new_rows_decay": weight_decay})
        mapper = [p for p in self.output_mapper.parameters() if p.requires_grad]
        groups.append({"params": mapper, "lr": mapper_lr or lr, "weight_decay": weight_decay})
        return [g for g in groups if g["params"]]

    def install_optimizer_hooks(self, optimizer: torch.optim.Optimizer) -> vokens.NewRowsOnlyDecay | None:
        for group in optimizer.param_groups:
            if "new_rows_decay" in group:
                return vokens.NewRowsOnlyDecay(
                    optimizer, group["params"], self.num_new_tokens, group["new_rows_decay"]
                )
        return None

    def maybe_autocast(self):
        """Autocast to the LLM's dtype when it is not fp32 (the fp32 vocabulary rows and mapper meet bf16 layers,
        as under the official Lightning bf16-mixed precision)."""
        llm_dtype = self._llm_dtype()
        if llm_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=llm_dtype)

    def _llm_dtype(self) -> torch.dtype:
        for name, param in self.llama_model.named_parameters():
            if "layers.0." in name:
                return param.dtype
        return torch.float32

    # -- inputs --------------------------------------------------------------------------

    def build_llm_inputs(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        labels: Tensor | None = None,
        input_images: Sequence[Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Official `input_warp`: a BOS embedding, then the token embeddings with every `<ImageHere>` replaced by
        the projected Q-Former tokens of that sample's next input image; rows right-padded with zero vectors.

        input_ids, attention_mask, labels: (B, T) as the collator gives them (eos-padded). input_images: per
        sample (n_b, 3, S, S) or None. Returns inputs_embeds (B, L, D), attention_mask (B, L) long, labels (B, L).
        """
        device = self.device
        input_ids = input_ids.to(device)
        batch = input_ids.shape[0]
        per_image = self.tokens_per_image
        token_position, is_image, lengths = vokens.expand_image_placeholders(
            input_ids, self.image_token_id, per_image
        )
        longest = is_image.shape[1]
        counts = vokens.placeholder_counts(input_ids, self.image_token_id)
        try:
            images = vokens.select_images(list(input_images or [None] * batch), counts)
        except ValueError as exc:
            raise DataError(f"MiniGPT-5 batch: {exc}") from exc

        text = self.embed_tokens(input_ids)  # (B, T, D)
        embeds = text.new_zeros(batch, longest, text.shape[-1])
        is_text = input_ids != self.image_token_id
        rows = torch.arange(batch, device=device)[:, None].expand_as(input_ids)
        embeds[rows[is_text], token_position[is_text]] = text[is_text]
        bos = torch.full((batch, 1), self.bos_token_id, dtype=torch.long, device=device)
        embeds[:, 0] = self.embed_tokens(bos)[:, 0]
        if images is not None:
            image_embeds, _ = self.encode_img(images.to(device))  # (N_img, P, D)
            embeds = embeds.masked_scatter(is_image[..., None], image_embeds.to(embeds.dtype))

        positions = torch.arange(longest, device=device)
        atts = torch.zeros(batch, longest, dtype=torch.long, device=device)
        atts[:, 0] = 1
        atts[rows, token_position] = attention_mask.to(device).long()
        atts[is_image] = 1
        atts = atts * (positions[None, :] < lengths[:, None])
        targets = torch.full((batch, longest), vokens.IGNORE_INDEX, dtype=torch.long, device=device)
        if labels is not None:
            labels = labels.to(device)
            targets[rows[is_text], token_position[is_text]] = labels[is_text]
        return embeds, atts, targets

    @property
    def bos_token_id(self) -> int:
        config = self.llama_model.config
        if self.llama_tokenizer is not None:
            return int(self.llama_tokenizer.bos_token_id)
        return int(config.bos_token_id)

    def tokenize_pairs(self, sources: Sequence[str], targets: Sequence[str]) -> dict[str, Tensor]:
        """The official `__getitem__` + collator for text: source and target tokenised apart (no BOS), labels
        -100 on the source and on [IMG1]..[IMG6], right-padded with eos (attention 0, label -100)."""
        ids, labels = [], []
        for source, target in zip(self._ids(sources), self._ids(targets)):
            ids.append(torch.tensor(source + target, dtype=torch.long))
            labels.append(torch.tensor([vokens.IGNORE_INDEX] * len(source) + target, dtype=torch.long))
        input_ids = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id)
        label_ids = nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=vokens.IGNORE_INDEX)
        attention = nn.utils.rnn.pad_sequence([torch.ones_like(i) for i in ids], batch_first=True)
        label_ids = vokens.mask_voken_labels(label_ids, self.first_voken_id, self.num_vokens)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": label_ids}

    # -- training forward ----------------------------------------------------------------

    def run_llm(self, inputs_embeds: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """logits (B, L, V) and last-layer hidden states (B, L, D) (after the final norm)."""
        with self.maybe_autocast():
            out = self.llama_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                use_cache=False,
                output_hidden_states=True,
            )
        return out.logits, out.hidden_states[-1]

    def map_vokens(self, voken_states: Tensor) -> Tensor:
        """(N, 8, D_llm) -> (N, 77, W) conditioning."""
        return self.output_mapper(voken_states.float())

    def unconditional_feature(self, batch: int = 1) -> Tensor:
        """The negative / dropped conditioning: the mapper applied to zero voken states, (batch, 77, W)."""
        zeros = torch.zeros(batch, self.num_vokens, self.llama_model.config.hidden_size, device=self.device)
        return self.map_vokens(zeros)

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

    # -- generation ----------------------------------------------------------------------

    def generation_inputs_for(self, prompts: Sequence[str], images: Sequence[Tensor | None] | None = None
                              ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Context embeds (B, L, D) LEFT-padded with zero vectors, attention (B, L) long: BOS + the prompt with
        its `<ImageHere>` replaced (official `predict` with add_special_tokens=False)."""
        ids = [torch.tensor(i, dtype=torch.long) for i in self._ids(prompts)]
        input_ids = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id)
        attention = nn.utils.rnn.pad_sequence([torch.ones_like(i) for i in ids], batch_first=True)
        embeds, atts, _ = self.build_llm_inputs(input_ids, attention, None, images)
        longest = atts.shape[1]
        shift = longest - atts.sum(dim=1)  # (B,) right-padded contexts have no holes: move each row right
        position = torch.arange(longest, device=atts.device)[None, :]
        valid = position >= shift[:, None]  # (B, L)
        source = (position - shift[:, None]).clamp(min=0)
        embeds = torch.gather(embeds, 1, source[..., None].expand_as(embeds))
        atts = valid.long()
        return embeds * atts[..., None].to(embeds.dtype), atts

    @torch.no_grad()
    def trace_generation(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        *,
        max_new_tokens: int = 256,
        do_sample: bool = True,
        top_p: float = 0.9,
        temperature: float = 1.0,
        repetition_penalty: float = 2.0,
        min_length: int = 1,
        force_generation: bool = False,
        stop_words_ids: Sequence[Sequence[int]] | None = OFFICIAL_STOP_IDS,
        generator: torch.Generator | None = None,
        forced_tokens: Tensor | None = None,
    ) -> VokenTrace:
        """Official sampling with the 8-voken step: whenever a row samples `[IMG0]`, its next LLM input is all 8
        voken embeddings at once (positions p..p+7); the first such step gives that row's voken states = [state
        that predicted [IMG0]] + [states at [IMG0]..[IMG6]]. Other rows feed their one token in the same call
        (7 masked slots), so a batch computes what each row alone would. `forced_tokens` (B, T) replaces the
        sampled ids (teacher forcing); `in_nucleus` then says whether each forced id was inside top-p."""
        from transformers import DynamicCache, RepetitionPenaltyLogitsProcessor, TopPLogitsWarper

        device = inputs_embeds.device
        batch = inputs_embeds.shape[0]
        eos = int(self.llama_model.config.eos_token_id if self.llama_tokenizer is None
                  else self.llama_tokenizer.eos_token_id)  # fmt: skip
        img0 = self.first_voken_id
        voken_embeds = self.embed_tokens(torch.tensor(self.voken_ids, device=device))  # (8, D)
        penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty) if repetition_penalty != 1 else None
        nucleus = TopPLogitsWarper(top_p) if top_p < 1 else None
        stops = [torch.tensor(list(s), device=device) for s in (stop_words_ids or [])]
        if forced_tokens is not None:
            max_new_tokens = min(max_new_tokens, forced_tokens.shape[1])

        cache = DynamicCache()
        atts = attention_mask.long()
        positions = (atts.cumsum(dim=1) - 1).clamp(min=0)
        logits, hidden = self._cached_step(inputs_embeds, atts, positions, cache)
        trace = VokenTrace(
            sequences=torch.full((batch, 1), self.bos_token_id, dtype=torch.long, device=device),
            step_states=[hidden],
            voken_states=hidden.new_zeros(batch, self.num_vokens, hidden.shape[-1]),
            has_image=torch.zeros(batch, dtype=torch.bool, device=device),
            finished=torch.zeros(batch, dtype=torch.bool, device=device),
            lengths=torch.zeros(batch, dtype=torch.long, device=device),
        )
        next_logits, prev_state = logits[:, -1].float(), hidden[:, -1]
        for step in range(max_new_tokens):
            scores = next_logits
            if penalty is not None:  # over the placeholder BOS and the recorded ids, as transformers 4.31
                scores = penalty(trace.sequences, scores)
            if trace.sequences.shape[1] < min_length:
                scores[:, eos] = -float("inf")
            if force_generation:  # official: the [IMG0] score becomes 10x the row max until [IMG0] appears
                boost = ~(trace.sequences == img0).any(dim=1)
                scores[boost, img0] = 10 * scores[boost].max(dim=-1).values
            if temperature != 1.0:
                scores = scores / temperature
            if nucleus is not None:
                scores = nucleus(trace.sequences, scores)
            if forced_tokens is not None:
                token = forced_tokens[:, step].to(device)
            elif do_sample:
                token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
            else:
                token = scores.argmax(dim=-1)
            trace.in_nucleus.append(torch.isfinite(scores.gather(1, token[:, None]).squeeze(1)))
            token = torch.where(trace.finished, eos, token)
            trace.sequences = torch.cat([trace.sequences, token[:, None]], dim=1)
            trace.lengths += (~trace.finished).long()
            trace.finished |= self._stopped(trace.sequences, eos, stops)
            if step == max_new_tokens - 1 or bool(trace.finished.all()):
                break
            starts = (token == img0) & ~trace.finished
            width = self.num_vokens if bool(starts.any()) else 1
            step_embeds = self.embed_tokens(token)[:, None].expand(-1, width, -1).clone()  # (B, k, D)
            step_atts = torch.zeros(batch, width, dtype=torch.long, device=device)
            step_atts[:, 0] = 1
            if width > 1:
                step_embeds[starts] = voken_embeds.to(step_embeds.dtype)
                step_atts[starts] = 1
            atts = torch.cat([atts, step_atts], dim=1)
            positions = (atts.cumsum(dim=1) - 1)[:, -width:]
            logits, hidden = self._cached_step(step_embeds, atts, positions, cache)
            trace.step_states.append(hidden)
            last = step_atts.sum(dim=1) - 1  # (B,) the last real input of each row
            rows = torch.arange(batch, device=device)
            first_image = starts & ~trace.has_image
            if bool(first_image.any()):
                states = torch.cat([prev_state[:, None], hidden[:, : self.num_vokens - 1]], dim=1)
                trace.voken_states[first_image] = states[first_image]
                trace.has_image |= first_image
            next_logits, prev_state = logits[rows, last].float(), hidden[rows, last]
        return trace

    def _cached_step(self, embeds: Tensor, atts: Tensor, positions: Tensor, cache) -> tuple[Tensor, Tensor]:
        with self.maybe_autocast():
            out = self.llama_model(
                inputs_embeds=embeds,
                attention_mask=atts,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                output_hidden_states=True,
            )
        return out.logits, out.hidden_states[-1]

    @staticmethod
    def _stopped(sequences: Tensor, eos: int, stops: list[Tensor]) -> Tensor:
        done = sequences[:, -1] == eos
        for stop in stops:  # a couple of stop sequences, each compared with the whole batch at once
            if sequences.shape[1] - 1 >= len(stop):
                done |= (sequences[:, -len(stop) :] == stop).all(dim=1)
        return done

    @torch.no_grad()
    def render_images(
        self,
        voken_states: Tensor,
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
        latents: Tensor | None = None,
        generator: torch.Generator | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ):
        """(N, 8, D) voken states -> image_decoder.DecodedImages, classifier-free guidance against the mapped
        zero states (official negative_prompt_embeds). on_step(done, total): after each denoising step."""
        if self.image_decoder is None:
            raise ConfigError("this MiniGPT-5 was built without an image decoder (model.sd_model is empty)")
        conditioning = self.map_vokens(voken_states)
        negative = self.unconditional_feature(1)
        return self.image_decoder.generate(
            conditioning,
            negative,
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps,
            latents=latents,
            generator=generator,
            on_step=on_step,
        )

    def decode_official(self, sequences: Tensor) -> list[str]:
        """Official text_out: the raw ids (placeholder BOS included) decoded with special tokens kept."""
        return [self.llama_tokenizer.decode(row, skip_special_tokens=False) for row in sequences.tolist()]

    def answer_text(self, token_ids: Sequence[int]) -> str:
        """Display text: special tokens (vokens, eos) dropped, `###` removed, whitespace stripped."""
        text = self.llama_tokenizer.decode(list(token_ids), skip_special_tokens=True)
        return text.replace("###", "").strip()

    @torch.no_grad()
    def generate_answers(
        self,
        images: Tensor | Sequence[Tensor | None] | None,
        texts: Sequence[str],
        **options: Any,
    ) -> GenerationResult:
        """Text and images for a batch of prompts (the house interface: images first). images: None, (B, 3, S, S)
        (one per prompt) or per prompt (n, 3, S, S) / None, used at each prompt's `<ImageHere>` in order.
        options: those of `generate_from_context`. Rows that produce `[IMG0]` get one image each."""
        if isinstance(images, Tensor):
            images = list(images[:, None]) if images.ndim == 4 else list(images)
        embeds, atts = self.generation_inputs_for(texts, images)
        return self.generate_from_context(embeds, attention_mask=atts, **options)

    def generate(self, images: Tensor | Sequence[Tensor | None] | None, texts: Sequence[str], **options: Any
                 ) -> list[str]:  # fmt: skip
        """The texts of `generate_answers`."""
        return self.generate_answers(images, texts, **options).texts

    @torch.no_grad()
    def generate_from_context(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        *,
        max_new_tokens: int = 256,
        do_sample: bool = True,
        top_p: float = 0.9,
        temperature: float = 1.0,
        repetition_penalty: float = 2.0,
        min_length: int = 1,
        force_generation: bool = False,
        stop_words_ids: Sequence[Sequence[int]] | None = OFFICIAL_STOP_IDS,
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
        generate_images: bool = True,
        generator: torch.Generator | None = None,
    ) -> GenerationResult:
        """Answer a ready context (B, L, D) (left-padded when attention_mask is given). Official `generate`
        defaults: sampling top-p 0.9, repetition penalty 2.0, stop at `###`, max 256 new tokens, CFG 7.5 over
        the scheduler's 50 steps. texts: special tokens and `###` removed; token_ids: new ids up to the stop."""
        if attention_mask is None:
            attention_mask = torch.ones(
                inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device
            )
        trace = self.trace_generation(
            inputs_embeds,
            attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            top_p=top_p,
            temperature=temperature,
            repetition_penalty=repetition_penalty,
            min_length=min_length,
            force_generation=force_generation,
            stop_words_ids=stop_words_ids,
            generator=generator,
        )
        token_ids = [row[1 : 1 + int(n)] for row, n in zip(trace.sequences, trace.lengths)]
        texts = [self.answer_text(ids.tolist()) for ids in token_ids]
        images_out: list[list[Any]] = [[] for _ in range(inputs_embeds.shape[0])]
        if generate_images and bool(trace.has_image.any()) and self.image_decoder is not None:
            rows = trace.has_image.nonzero().flatten().tolist()
            decoded = self.render_images(
                trace.voken_states[rows], guidance_scale, num_inference_steps, generator=generator
            )
            for row, image in zip(rows, decoded.images):
                images_out[row].append(image)
        return GenerationResult(
            texts=texts, token_ids=token_ids, images=images_out, voken_states=trace.voken_states
        )

    # -- checkpoints ---------------------------------------------------------------------

    def load_checkpoint(self, path: str, allow_missing: bool = False) -> LoadReport:
        """`ckpt` = the MiniGPT-4 checkpoint (`prerained_minigpt4_7b.pth`): only `llama_proj` is taken from it."""
        state = read_state_dict(resolve_path(path), what="MiniGPT-4 checkpoint (model.ckpt)")
        required = [] if allow_missing else [k for k in self.state_dict() if k.startswith("llama_proj.")]
        return load_into(self, state, f"MiniGPT-4 checkpoint {path}", required=required)

    def load_lightning_checkpoint(
        self, path: str | Path, stage: int, allow_missing: bool = False
    ) -> LoadReport:
        """An official MiniGPT-5 Lightning `.ckpt` (trainable tensors only, official names).

        Stage 1 into a LoRA model: its embed_tokens / lm_head go onto every copy peft holds (`original_module`
        and `modules_to_save`), as the official `on_load_checkpoint` does. Required: stage 1 -> the vocabulary
        matrices, fc, queries and mapper; stage 2 -> every trainable tensor of this model."""
        source = f"MiniGPT-5 stage-{stage} checkpoint {path}"
        official = read_state_dict(resolve_path(str(path)), what=f"MiniGPT-5 stage-{stage} checkpoint")
        state = {our_key(k): v for k, v in official.items()}
        own = self.state_dict()
        if self.lora.r > 0:
            state = _spread_vocabulary(state, own)
        if allow_missing:
            required: list[str] = []
        elif stage == 1:
            required = [k for k in own if k.startswith("output_mapper.") or _is_vocab_key(k)]
        else:
            required = [k for k, p in self.named_parameters() if p.requires_grad]
        return load_into(self, state, source, required=required)

    def official_state_dict(self) -> dict[str, Tensor]:
        """What the official `on_save_checkpoint` keeps: trainable parameters, official Lightning names."""
        return {lightning_key(k): p.detach() for k, p in self.named_parameters() if p.requires_grad}

    @staticmethod
    def official_key(key: str) -> str:
        return lightning_key(key)

    # -- config --------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: Any, load_weights: bool = True) -> MiniGPT5:
        base = base_kwargs(
            cfg, default_image_size=224, default_lora_r=0, default_max_txt_len=160, default_template=""
        )
        base["llm"] = _without_lora(base["llm"])  # MiniGPT-5 adds its LoRA after growing the vocabulary
        base["end_sym"] = str(cfg_get(cfg, "end_sym", "###"))
        vit = base["vit"]
        qformer = QFormerConfig(
            hidden_size=int(cfg_get(cfg, "qformer_hidden_size", 768)),
            num_hidden_layers=int(cfg_get(cfg, "qformer_num_layers", 12)),
            num_attention_heads=int(cfg_get(cfg, "qformer_num_heads", 12)),
            intermediate_size=int(cfg_get(cfg, "qformer_intermediate_size", 3072)),
            cross_attention_freq=int(cfg_get(cfg, "qformer_cross_attention_freq", 2)),
            max_position_embeddings=int(cfg_get(cfg, "qformer_max_position_embeddings", 512)),
            encoder_width=vit.width,
            num_query_token=int(cfg_get(cfg, "num_query_token", 32)),
        )
        decoder = build_image_decoder(cfg, load_weights)
        model = cls(
            image_decoder=decoder,
            mapper=mapper_config(cfg, decoder),
            num_vokens=int(cfg_get(cfg, "num_vokens", vokens.NUM_VOKENS)),
            lora=lora_settings(cfg),
            losses=loss_settings(cfg),
            decay_frozen_rows=bool(cfg_get(cfg, "decay_frozen_rows", True)),
            has_qformer=True,
            freeze_qformer=bool(cfg_get(cfg, "freeze_qformer", True)),
            qformer=qformer,
            prompt_path=None,
            load_weights=load_weights,
            **base,
        )
        if load_weights:
            # model.ckpt is a MiniGPT-4 checkpoint here (llama_proj only): the stage-2 file is the complete one
            sources = load_pretrained_parts(model, cfg, report=False)
            allow = bool(cfg_get(cfg, "ckpt_allow_missing", False))
            stage1 = str(cfg_get(cfg, "stage1_ckpt", ""))
            stage2 = str(cfg_get(cfg, "stage2_ckpt", ""))
            if stage2 and not stage1:
                raise ConfigError(
                    "model.stage2_ckpt is set without model.stage1_ckpt: a stage-2 checkpoint holds no fc / "
                    "queries (they come from stage 1); set model.stage1_ckpt to the stage-1 .ckpt"
                )
            for stage, path in ((1, stage1), (2, stage2)):
                if path:
                    loaded = model.load_lightning_checkpoint(
                        path, stage=stage, allow_missing=allow or (stage == 1 and bool(stage2))
                    )
                    sources.record(loaded.source, loaded.loaded)
            sources.report(model, complete_checkpoint=stage2 or None)
        return model


def _is_vocab_key(name: str) -> bool:
    return ("embed_tokens" in name or "lm_head" in name) and not name.endswith("original_module.weight")


def _spread_vocabulary(state: dict[str, Tensor], own: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official stage-2 rule: a plain (stage-1) embed_tokens / lm_head tensor is copied to every model key
    that contains that module name (peft's `original_module` and `modules_to_save.default`)."""
    out = dict(state)
    for key, tensor in state.items():
        for name in ("embed_tokens", "lm_head"):
            plain = f"{name}.weight"
            if key.endswith(plain) and key not in own:
                del out[key]
                for target in own:
                    if name in target and target.endswith(".weight"):
                        out.setdefault(target, tensor)
    return out


def _without_lora(llm):
    from dataclasses import replace

    return replace(llm, lora=LoraSettings(r=0))


def apply_minigpt5_lora(llm: nn.Module, lora: Minigpt5Lora) -> nn.Module:
    """Official stage 2: peft LoRA on q/v with embed_tokens and lm_head saved whole (their copies trainable)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        modules_to_save=list(lora.modules_to_save),
    )
    model = get_peft_model(llm, config)
    for param in model.parameters():  # official: LoRA and the saved copies in fp32
        if param.requires_grad:
            param.data = param.data.float()
    return model


def build_image_decoder(cfg: Any, load_weights: bool) -> ImageDecoder | None:
    path = resolve_path(cfg_get(cfg, "sd_model", ""))
    if path is None:
        return None
    kind = str(cfg_get(cfg, "image_decoder", "stable_diffusion"))
    if kind not in IMAGE_DECODERS:
        raise ConfigError(f"model.image_decoder={kind!r}; known: {', '.join(sorted(IMAGE_DECODERS))}")
    return IMAGE_DECODERS[kind](path, parse_dtype(str(cfg_get(cfg, "sd_dtype", "float32"))), load_weights)


def mapper_config(cfg: Any, decoder: ImageDecoder | None) -> OutputMapperConfig:
    llm_width = _llm_hidden_size(cfg)
    width = cfg_get(cfg, "mapper_width", None)
    if width is None:
        width = decoder.conditioning_width if decoder is not None else 1024
    return OutputMapperConfig(
        llm_width=llm_width,
        width=int(width),
        num_queries=int(cfg_get(cfg, "mapper_num_queries", 77)),
        num_encoder_layers=int(cfg_get(cfg, "mapper_encoder_layers", 4)),
        num_decoder_layers=int(cfg_get(cfg, "mapper_decoder_layers", 4)),
        feedforward=int(cfg_get(cfg, "mapper_feedforward", 4096)),
        num_heads=int(cfg_get(cfg, "mapper_num_heads", 8)),
        dropout=float(cfg_get(cfg, "mapper_dropout", 0.0)),
        layer_norm_eps=float(cfg_get(cfg, "mapper_layer_norm_eps", 1e-5)),
        activation=str(cfg_get(cfg, "mapper_activation", "relu")),
    )


def _llm_hidden_size(cfg: Any) -> int:
    import json

    overrides = dict(cfg_get(cfg, "llm_config", {}))
    if "hidden_size" in overrides:
        return int(overrides["hidden_size"])
    path = resolve_path(cfg_get(cfg, "llama_model", ""))
    config = (path / "config.json") if path is not None else None
    if config is None or not config.is_file():
        raise ConfigError(
            f"model.llama_model={str(path)!r} has no config.json; set it to the Vicuna-7B v0 folder"
        )
    return int(json.loads(config.read_text())["hidden_size"])


def lora_settings(cfg: Any) -> Minigpt5Lora:
    lora = cfg_get(cfg, "lora", None)
    if not lora:
        return Minigpt5Lora(r=0)
    return Minigpt5Lora(
        r=int(cfg_get(lora, "r", 8)),
        alpha=int(cfg_get(lora, "alpha", 16)),
        dropout=float(cfg_get(lora, "dropout", 0.05)),
        target_modules=as_str_tuple(
            cfg_get(lora, "target_modules", ["q_proj", "v_proj"]), "lora.target_modules"
        ),
        modules_to_save=as_str_tuple(
            cfg_get(lora, "modules_to_save", ["lm_head", "embed_tokens"]), "lora.modules_to_save"
        ),
    )


def loss_settings(cfg: Any) -> LossSettings:
    gamma = cfg_get(cfg, "snr_gamma", 5.0)
    return LossSettings(
        text_weight=float(cfg_get(cfg, "text_loss_weight", 0.01)),
        image_weight=float(cfg_get(cfg, "image_loss_weight", 1.0)),
        caption_weight=float(cfg_get(cfg, "caption_loss_weight", 0.1)),
        snr_gamma=float(gamma) if gamma else None,
        cfg_drop_prob=float(cfg_get(cfg, "cfg_drop_prob", 0.1)),
    )


__all__ = ["MiniGPT5", "Minigpt5Lora", "Minigpt5Output", "TrainingDraws", "VokenTrace"]
