"""`MiniGPTBase`: what MiniGPT-4 and MiniGPT-v2 share (official `minigpt_base.py` + `base_model.py`).

Vision encoder set-up and freezing, prompt wrapping at `<ImageHere>`, answer / conversation tokenisation, the
[BOS][condition][answer][condition padding] training layout and its loss, batched generation and `multi_select`.
Layout arithmetic lives in `prompting.py` (pure functions); this class only tokenises, embeds and calls the LLM.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.paths import LIBRARY_ROOT
from minigpt4.models import prompting
from minigpt4.models.checkpoint import BlocksBeyond, LoadReport, load_into, read_state_dict
from minigpt4.models.eva_vit import (
    EvaVitConfig,
    FP32LayerNorm,
    VisionTransformer,
    convert_weights_to_fp16,
    interpolate_pos_embed,
)
from minigpt4.models.feature_cache import ImageFeatureCache
from minigpt4.models.generation import GenerationMixin
from minigpt4.models.llm import LlmSettings, has_weight_files, load_llm, load_tokenizer, parse_dtype
from minigpt4.models.options import resolve_path
from minigpt4.models.projection import concat_neighbours

logger = logging.getLogger(__name__)

LN_VISION_EPS = 1e-5


class MiniGPTBase(GenerationMixin, nn.Module):
    """Shared base. Subclasses set `self.llama_proj`, `tokens_per_image` (and may override `project_patches`).

    Per-architecture facts the callers read instead of testing the architecture's name (class attributes):
    PRETRAINED_MODEL_CONFIG_DICT: {model_type: default YAML relative to the package};
    CONVERSATION_TEMPLATE: the chat template name (`conversation.templates.TEMPLATES`) of every model type, or
    CONVERSATION_TEMPLATE_BY_MODEL_TYPE / _BY_NAME_PART to choose it per model type;
    ANSWERS_WITH_BOXES: answers may hold grounding boxes (the API parses them).
    """

    PRETRAINED_MODEL_CONFIG_DICT: ClassVar[dict[str, str]] = {}
    CONVERSATION_TEMPLATE: ClassVar[str | None] = None
    CONVERSATION_TEMPLATE_BY_MODEL_TYPE: ClassVar[dict[str, str]] = {}
    CONVERSATION_TEMPLATE_BY_NAME_PART: ClassVar[dict[str, str]] = {}
    ANSWERS_WITH_BOXES: ClassVar[bool] = False

    def __init__(
        self,
        *,
        vit: EvaVitConfig,
        vit_precision: str,
        freeze_vit: bool,
        llm: LlmSettings,
        freeze_llm: bool = True,
        max_txt_len: int = 32,
        max_context_len: int = 3800,
        prompt_template: str = "",
        end_sym: str = "\n",
        autocast_dtype: str = "float16",
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        self._frozen_modules: list[str] = []
        # LLM first, as the official init_llm runs before init_vision_encoder (same random-init order).
        self.llama_tokenizer = self._init_tokenizer(llm.path, load_weights)
        self.llama_model = load_llm(llm, load_weights=load_weights)
        # the folder the LLM weights came from ("" for a folder without weights: tiny configs, whose LLM comes
        # from model.ckpt); load_pretrained_parts records it among the model's weight sources
        llm_path = Path(llm.path).expanduser()
        self.llm_weights_folder = str(llm_path) if load_weights and has_weight_files(llm_path) else ""
        if (
            not freeze_llm
        ):  # ours: train the whole LLM (tiny models); quantised int weights cannot take gradients
            for param in self.llama_model.parameters():
                param.requires_grad_(param.is_floating_point())
        self.lora_r = llm.lora.r
        self.visual_encoder, self.ln_vision = self._init_vision_encoder(vit, vit_precision, freeze_vit)
        self.max_txt_len = int(max_txt_len)
        self.max_context_len = int(max_context_len)
        self.prompt_template = prompt_template
        self.end_sym = end_sym
        self.prompt_list: list[str] = []
        self.autocast_dtype = parse_dtype(autocast_dtype)
        self.image_feature_cache: ImageFeatureCache | None = None  # run.cache_image_features

    @classmethod
    def default_config_path(cls, model_type: str) -> Path:
        return LIBRARY_ROOT / cls.PRETRAINED_MODEL_CONFIG_DICT[model_type]

    @classmethod
    def conversation_template_name(cls, model_type: str) -> str:
        """The name of the chat template (in `conversation.templates.TEMPLATES`) for `model_type`."""
        if cls.CONVERSATION_TEMPLATE is not None:
            return cls.CONVERSATION_TEMPLATE
        if model_type in cls.CONVERSATION_TEMPLATE_BY_MODEL_TYPE:
            return cls.CONVERSATION_TEMPLATE_BY_MODEL_TYPE[model_type]
        for part, name in cls.CONVERSATION_TEMPLATE_BY_NAME_PART.items():
            if part in model_type:
                return name
        parts = "/".join(repr(part) for part in cls.CONVERSATION_TEMPLATE_BY_NAME_PART)
        raise ConfigError(
            f"no chat template for {cls.__name__} model_type={model_type!r}; known model types: "
            f"{sorted(cls.CONVERSATION_TEMPLATE_BY_MODEL_TYPE)} (or any name containing {parts or 'nothing'}); "
            f"add it to {cls.__name__}.CONVERSATION_TEMPLATE_BY_MODEL_TYPE"
        )

    # -- construction --------------------------------------------------------------------

    @staticmethod
    def _init_tokenizer(path: str, load_weights: bool):
        try:
            return load_tokenizer(path)
        except (ConfigError, OSError):
            if load_weights:
                raise
            logger.info("no tokenizer in %s: building the model without one (load_weights=False)", path)
            return None

    def _init_vision_encoder(
        self, cfg: EvaVitConfig, precision: str, freeze: bool
    ) -> tuple[VisionTransformer, FP32LayerNorm]:
        if not freeze:
            precision = "fp32"  # official: fp16 is not for training
        encoder = VisionTransformer(cfg)
        if precision == "fp16":
            convert_weights_to_fp16(encoder)
        ln_vision = FP32LayerNorm(cfg.width, eps=LN_VISION_EPS)
        if freeze:
            self._freeze("visual_encoder", encoder)
            self._freeze("ln_vision", ln_vision)
            logger.info("freeze vision encoder")
        return encoder, ln_vision

    def _freeze(self, name: str, module: nn.Module) -> None:
        """requires_grad False and pinned to eval mode (official `disabled_train`)."""
        module.requires_grad_(False)
        module.eval()
        self._frozen_modules.append(name)

    def train(self, mode: bool = True) -> MiniGPTBase:
        super().train(mode)
        for name in self._frozen_modules:
            getattr(self, name).eval()
        return self

    def load_vit_weights(self, path: str) -> LoadReport:
        """eva_vit_g.pth (flat) into `visual_encoder`; the position table is resized to the image size."""
        state = read_state_dict(resolve_path(path), what="EVA ViT (model.vit_ckpt)")
        if "pos_embed" in state:
            state["pos_embed"] = interpolate_pos_embed(
                state["pos_embed"], self.visual_encoder.cfg.num_patches
            )
        return load_into(
            self.visual_encoder,
            state,
            f"EVA ViT {path}",
            required=self.visual_encoder.state_dict().keys(),
            ignorable=(BlocksBeyond(self.visual_encoder.cfg.depth),),
        )

    def load_checkpoint(self, path: str, allow_missing: bool = False) -> LoadReport:
        """A MiniGPT checkpoint (`ckpt`): `{"model": trainable tensors}`; every trainable tensor must be there."""
        state = read_state_dict(resolve_path(path), what="MiniGPT checkpoint (model.ckpt)")
        required = [] if allow_missing else [k for k, p in self.named_parameters() if p.requires_grad]
        return load_into(
            self,
            state,
            f"MiniGPT checkpoint {path}",
            required=required,
            fix_hint="; set model.ckpt_allow_missing=True to start those tensors from their current values",
        )

    # -- small helpers -------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.embed_tokens_module.weight.device

    @property
    def embed_tokens_module(self) -> nn.Embedding:
        return self.llama_model.get_input_embeddings()

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        return self.embed_tokens_module(token_ids.to(self.device))

    def maybe_autocast(self):
        """Official: fp16 autocast on GPU, nothing on CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _ids(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Token ids of each text, no padding."""
        if not texts:
            return []
        return self.llama_tokenizer(list(texts), add_special_tokens=add_special_tokens).input_ids

    def encode_img(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image: (B, 3, H, W) (or (B, k, 3, H, W), flattened) -> embeds (B, T, D_llm), atts (B, T) long."""
        device = image.device
        if image.ndim > 4:
            image = image.reshape(-1, *image.shape[-3:])
        with self.maybe_autocast():
            if self.image_feature_cache is not None:
                features = self.image_feature_cache.features_for(image, self.frozen_image_features)
            else:
                features = self.frozen_image_features(image)
            image_embeds = self.project_frozen_features(features)  # (B, T, D_llm)
            atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=device)
        return image_embeds, atts

    def frozen_image_features(self, image: Tensor) -> Tensor:
        """image (B, 3, H, W) -> ViT patches (B, 1+P, W) after ln_vision, then through the connector while it
        is frozen (`connector_is_frozen`): everything before the first trainable module, what the feature cache
        stores. `project_frozen_features` finishes the path; together they are `project_patches(patches)`."""
        patches = self.ln_vision(self.visual_encoder(image)).to(image.device)  # (B, 1+P, W)
        return self.connect(patches) if self.connector_is_frozen else patches

    def project_frozen_features(self, features: Tensor) -> Tensor:
        """`frozen_image_features`' output -> image embeds (B, T, D_llm)."""
        return self.llama_proj(features) if self.connector_is_frozen else self.project_patches(features)

    def project_patches(self, patches: Tensor) -> Tensor:
        """patches (B, 1+P, W) -> connector -> llama_proj -> (B, T, D_llm)."""
        return self.llama_proj(self.connect(patches))

    def connect(self, patches: Tensor) -> Tensor:
        """No-Q-Former path (Llama-2 MiniGPT-4, v2): patches (B, 1+P, W), class token dropped, 4 neighbours
        concatenated -> (B, P/4, 4W). Models with another connector override this and `connector_is_frozen`."""
        return concat_neighbours(patches[:, 1:, :])

    @property
    def connector_is_frozen(self) -> bool:
        """Whether `connect` has no trainable tensor (the 4-token concatenation has none)."""
        return True

    # -- fast paths (run options; the official recipe leaves them off) ---------------------

    def enable_image_feature_cache(self, storage_device: str | torch.device = "cpu") -> ImageFeatureCache:
        """Cache `frozen_image_features` per processed image (see feature_cache.py). Refused when a part of
        the image side before the connector trains, since its output then changes every step."""
        training = [
            name
            for name in ("visual_encoder", "ln_vision")
            if any(p.requires_grad for p in getattr(self, name).parameters())
        ]
        if training:
            raise ConfigError(
                f"run.cache_image_features needs a frozen image encoder, but {' and '.join(training)} "
                "train (model.freeze_vit is False); set model.freeze_vit=True or "
                "run.cache_image_features=False"
            )
        self.image_feature_cache = ImageFeatureCache(storage_device)
        return self.image_feature_cache

    def compile_image_encoder(self, **compile_kwargs: Any) -> None:
        """torch.compile the EVA ViT in place (`nn.Module.compile`: state-dict keys unchanged)."""
        self.visual_encoder.compile(**compile_kwargs)

    @property
    def pad_token_id(self) -> int:
        return int(self.llama_tokenizer.pad_token_id)

    # -- prompt wrapping (training) --------------------------------------------------------

    def prompt_wrap(
        self,
        img_embeds: Tensor | None,
        atts_img: Tensor | None,
        prompts: str | Sequence[str] | None,
        batch_size: int | None = None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """Text segments around `<ImageHere>` + image tokens, right-padded with the pad embedding, capped at
        max_context_len. No prompts: the image embeds unchanged. No image: the tokenised prompts (no cap).
        A single prompt string is used for every sample (`batch_size`, default: one per image)."""
        if prompts is None or len(prompts) == 0:
            return img_embeds, atts_img
        if isinstance(prompts, str):
            prompts = [prompts] * (batch_size or (len(img_embeds) if img_embeds is not None else 1))
        if img_embeds is None:
            segments = [[ids] for ids in self._ids(prompts)]
            token_ids, image_index, atts = prompting.context_layout(segments, 0, 0, self.pad_token_id)
            return self.embed_tokens(token_ids), atts.to(self.device)
        img_embeds = img_embeds.reshape(len(prompts), -1, img_embeds.shape[-1])  # (B, K*P, D)
        split = [prompting.split_image_prompt(p) for p in prompts]
        flat = self._ids([s for segs in split for s in segs])
        segments, start = [], 0
        for segs in split:
            segments.append(flat[start : start + len(segs)])
            start += len(segs)
        token_ids, image_index, atts = prompting.context_layout(
            segments,
            img_embeds.shape[1],
            self.tokens_per_image,
            self.pad_token_id,
            max_len=self.max_context_len,
        )
        embeds = prompting.splice_image_embeds(
            self.embed_tokens(token_ids), image_index.to(self.device), img_embeds
        )
        return embeds, atts.to(self.device)

    def tokenize_answers(self, answers: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """`answer + end_sym`, right-padded, cut at max_txt_len (which can drop end_sym, as officially)."""
        tokens = self.llama_tokenizer(
            [a + self.end_sym for a in answers],
            return_tensors="pt",
            padding="longest",
            truncation=True,
            max_length=self.max_txt_len,
            add_special_tokens=False,
            padding_side="right",
        )
        ids = tokens.input_ids.to(self.device)
        return ids, tokens.attention_mask.to(self.device), prompting.answer_targets(ids, self.pad_token_id)

    def tokenize_conversation(
        self, conv_q: Sequence[Sequence[str]], conv_a: Sequence[Sequence[str]]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Turns after the first: `<s>` + question (masked) and answer + end_sym (kept); see prompting."""
        bos = self.llama_tokenizer.bos_token
        questions = [self._ids([bos + q for q in qs[1:]]) for qs in conv_q]
        answers = [self._ids([a + self.end_sym for a in ans]) for ans in conv_a]
        ids, atts, targets = prompting.conversation_ids(
            questions, answers, self.max_txt_len, self.pad_token_id
        )
        return ids.to(self.device), atts.to(self.device), targets.to(self.device)

    def preparing_embedding(self, samples: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """cond_embeds (B, Lc, D), cond_atts (B, Lc), regress_embeds (B, La, D), regress_atts, part_targets."""
        if "image" in samples and samples["image"] is not None:
            img_embeds, img_atts = self.encode_img(samples["image"])
        else:
            img_embeds = img_atts = None

        if "conv_q" in samples:
            connect_sym = samples["connect_sym"][0]
            conv_q = [q.split(connect_sym) for q in samples["conv_q"]]
            conv_a = [a.split(connect_sym) for a in samples["conv_a"]]
            conv_q = [prompting.apply_template(self.prompt_template, qs) for qs in conv_q]
            cond_embeds, cond_atts = self.prompt_wrap(img_embeds, img_atts, [qs[0] for qs in conv_q])
            regress_ids, regress_atts, part_targets = self.tokenize_conversation(conv_q, conv_a)
        else:
            instruction = self._instruction(samples)
            cond_embeds, cond_atts = self.prompt_wrap(
                img_embeds, img_atts, instruction, len(samples["answer"])
            )
            regress_ids, regress_atts, part_targets = self.tokenize_answers(samples["answer"])
        if cond_embeds is None:  # text-only batch without any instruction
            batch = regress_ids.shape[0]
            cond_embeds = self.embed_tokens(regress_ids[:, :0])
            cond_atts = torch.zeros((batch, 0), dtype=torch.int32, device=self.device)
        return cond_embeds, cond_atts, self.embed_tokens(regress_ids), regress_atts, part_targets

    def _instruction(self, samples: dict[str, Any]) -> str | list[str] | None:
        if "instruction_input" in samples:
            instruction = samples["instruction_input"]
        elif self.prompt_list:
            instruction = random.choice(self.prompt_list)  # one prompt per batch, as officially
        else:
            instruction = None
        if getattr(self, "chat_template", False):
            if instruction is None:
                raise DataError(
                    "chat_template is on but the batch has no instruction_input (and the model no prompt list); "
                    "give the dataset an instruction or set model.chat_template=False"
                )
            instruction = prompting.apply_template(self.prompt_template, instruction)
        return instruction

    # -- training forward ----------------------------------------------------------------

    def build_llm_inputs(self, samples: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """inputs_embeds (B, 1+Lc+La, D), attention_mask (B, 1+Lc+La) long, targets (B, 1+Lc+La)."""
        cond_embeds, cond_atts, regress_embeds, regress_atts, part_targets = self.preparing_embedding(samples)
        index, _ = prompting.concat_gather_index(cond_atts, regress_embeds.shape[1])
        index = index.to(self.device)
        embeds = torch.cat([cond_embeds, regress_embeds.to(cond_embeds.dtype)], dim=1)
        atts = torch.cat([cond_atts.long(), regress_atts.long()], dim=1)
        inputs_embeds = prompting.gather_rows(embeds, index)
        attention_mask = prompting.gather_rows(atts, index)
        bos = torch.full_like(part_targets[:, :1], self.llama_tokenizer.bos_token_id)
        bos_atts = (
            torch.ones_like(attention_mask[:, :1]) if cond_atts.shape[1] == 0 else cond_atts[:, :1].long()
        )
        inputs_embeds = torch.cat([self.embed_tokens(bos).to(inputs_embeds.dtype), inputs_embeds], dim=1)
        attention_mask = torch.cat([bos_atts, attention_mask], dim=1)
        targets = prompting.training_targets(cond_atts.to(self.device), part_targets)
        return inputs_embeds, attention_mask, targets

    def forward(self, samples: dict[str, Any], reduction: str = "mean") -> dict[str, Tensor]:
        """{"loss": token-mean CE} or, with reduction="none", (B,) losses averaged over all L-1 positions
        (ignored positions count as 0, as the official per-sample loss does)."""
        inputs_embeds, attention_mask, targets = self.build_llm_inputs(samples)
        with self.maybe_autocast():
            logits = self.llama_model(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False
            ).logits
        return {"loss": causal_lm_loss(logits, targets, reduction)}

    # -- inference -----------------------------------------------------------------------

    def get_context_emb(self, prompt: str, img_list: Sequence[Tensor]) -> Tensor:
        """Chat context (1, L, D): segments around `<ImageHere>`, BOS on the first only; img_list: (1, P, D) each."""
        segments = prompting.split_image_prompt(prompt)
        if len(segments) != len(img_list) + 1:
            raise DataError(
                f"the prompt has {len(segments) - 1} {prompting.IMAGE_PLACEHOLDER} placeholder(s) "
                f"but {len(img_list)} image(s) were given"
            )
        images = (
            torch.cat([img.reshape(-1, img.shape[-1]) for img in img_list], 0)[None] if img_list else None
        )
        ids = [self._ids(segments[:1], add_special_tokens=True) + self._ids(segments[1:])]
        per_image = img_list[0].shape[-2] if img_list else 0
        token_ids, image_index, _ = prompting.context_layout(
            ids, per_image * len(img_list), per_image, self.pad_token_id
        )
        return prompting.splice_image_embeds(
            self.embed_tokens(token_ids), image_index.to(self.device), images
        )


def causal_lm_loss(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Shift-by-one CE in fp32. "mean": over non-ignored tokens; "none": (B,) mean over all L-1 positions."""
    shift_logits = logits[:, :-1].float()
    shift_targets = targets[:, 1:].to(logits.device)
    if reduction == "mean":
        return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_targets.reshape(-1))
    if reduction == "none":
        per_token = F.cross_entropy(shift_logits.transpose(1, 2), shift_targets, reduction="none")  # (B, L-1)
        return per_token.mean(dim=1)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
