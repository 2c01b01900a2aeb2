"""MiniGPT-5 (`minigpt5`): MiniGPT-4 (Vicuna v0, frozen EVA + Q-Former + llama_proj) that also answers with images.

Eight generative tokens `[IMG0]`..`[IMG7]` ("vokens") are added to the LLM; their last-layer hidden states go
through the output mapper (`output_mapper.py`) into the conditioning space of a frozen image decoder
(`image_decoder.py`, Stable Diffusion 2.1-base officially). Stage 1 trains the new vocabulary rows and the mapper;
stage 2 adds LoRA (peft, embed/lm_head as modules to save) and trains it with the mapper transformer.

State-dict names: the MiniGPT-4 parts keep their names (`llama_model`, `llama_proj`, ...); the official Lightning
module prefixes them with `model.`, and holds `fc`, `t2i_decoder_prompt`, `llm_to_t2i_mapping` at its top level,
which are ours under `output_mapper.` (`lightning_key` / `our_key` in `checkpoint.py` map both ways).

This file assembles the model (vocabulary growth, trainable rows and optimizer groups, the LLM inputs, checkpoint
loading, `from_config`); the training forward is in `minigpt5_training.py`, generation and image rendering in
`minigpt5_generation.py`, the config-read options in `minigpt5_settings.py`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
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
from minigpt4.models.image_decoder import ImageDecoder
from minigpt4.models.minigpt4 import MiniGPT4, load_pretrained_parts, model_type_table, qformer_config
from minigpt4.models.minigpt5_generation import VokenGeneration, VokenTrace
from minigpt4.models.minigpt5_settings import (
    LossSettings,
    Minigpt5Lora,
    apply_minigpt5_lora,
    build_image_decoder,
    lora_settings,
    loss_settings,
    mapper_config,
    without_lora,
)
from minigpt4.models.minigpt5_training import Minigpt5Output, Minigpt5TrainingForward, TrainingDraws
from minigpt4.models.options import cfg_get, resolve_path
from minigpt4.models.output_mapper import OutputMapper, OutputMapperConfig
from minigpt4.models.weight_sources import random_init_parts

logger = logging.getLogger(__name__)


@registry.register_model("minigpt5")
class MiniGPT5(Minigpt5TrainingForward, VokenGeneration, MiniGPT4):
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

    # -- the LLM and the output mapper (training and generation) -------------------------

    def run_llm(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor | None = None,
        cache: Any = None,
    ) -> tuple[Tensor, Tensor]:
        """logits (B, L, V) and last-layer hidden states (B, L, D) (after the final norm). Generation steps pass
        position_ids (B, L) and their transformers cache, which this call extends."""
        # transformers 5.25 renamed `past_key_values` to `cache` (the old name warns); older 5.x know only the old
        cache_kwargs = {} if cache is None else {cache_keyword(self.llama_model): cache}
        with self.maybe_autocast():
            out = self.llama_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=cache is not None,
                output_hidden_states=True,
                **cache_kwargs,
            )
        return out.logits, out.hidden_states[-1]

    def map_vokens(self, voken_states: Tensor) -> Tensor:
        """(N, 8, D_llm) -> (N, 77, W) conditioning."""
        return self.output_mapper(voken_states.float())

    def unconditional_feature(self, batch: int = 1) -> Tensor:
        """The negative / dropped conditioning: the mapper applied to zero voken states, (batch, 77, W)."""
        zeros = torch.zeros(batch, self.num_vokens, self.llama_model.config.hidden_size, device=self.device)
        return self.map_vokens(zeros)

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
        base["llm"] = without_lora(base["llm"])  # MiniGPT-5 adds its LoRA after growing the vocabulary
        base["end_sym"] = str(cfg_get(cfg, "end_sym", "###"))
        qformer = qformer_config(cfg, encoder_width=base["vit"].width)
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
            sources.report(
                model,
                complete_checkpoint=stage2 or None,
                random_by_design=random_init_parts(cfg_get(cfg, "random_init", [])),
            )
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


__all__ = ["MiniGPT5", "Minigpt5Lora", "Minigpt5Output", "TrainingDraws", "VokenTrace"]


def cache_keyword(llm: nn.Module) -> str:
    """The name under which this transformers version's LLM forward takes its KV cache (a LoRA-wrapped LLM passes
    its keyword arguments on to the model it wraps, so that model's signature decides)."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
