"""MiniGPT-4 (with Q-Former) -> a transformers `Blip2ForConditionalGeneration` folder.

    python -m minigpt4.tools.export hf-blip2 --cfg-path eval_configs/minigpt4_eval.yaml --out DIR
    export_hf_blip2(model, DIR)                   # from Python, a built model

Written: `config.json` (Blip2Config, text_config = the LLaMA config), `generation_config.json`, sharded
safetensors, `preprocessor_config.json`, tokenizer files, `processor_config.json` and `chat_template.jinja`,
plus `minigpt4_export.yaml` (our config, read back by `import`). Tensors stream one at a time from the source
into one output shard at a time: a 13B export holds the model once plus one shard.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import Tensor, nn
from transformers import Blip2Config, Blip2Processor, GenerationConfig

from minigpt4.common.errors import CheckpointError
from minigpt4.conversation.templates import template_for
from minigpt4.models.checkpoint_shards import ShardWriter, parse_size
from minigpt4.models.options import resolve_path
from minigpt4.processors.image import CLIP_MEAN, CLIP_STD
from minigpt4.tools.export.blip2_config import blip2_config
from minigpt4.tools.export.blip2_processor import (
    TOKENIZER_FILE,
    build_processor,
    check_processor,
    image_token_id,
    save_processor,
)
from minigpt4.tools.export.blip2_weights import to_transformers

logger = logging.getLogger(__name__)

EXPORT_CONFIG_NAME = "minigpt4_export.yaml"
WEIGHT_PATH_KEYS = ("ckpt", "vit_ckpt", "q_former_model", "llama_model")
NO_BLIP2_CLASS = (
    "has no Q-Former (ViT tokens are concatenated four at a time into llama_proj), and transformers' "
    "Blip2ForConditionalGeneration always runs one; no transformers class computes this model. Export it with "
    "minigpt4.api.save_pretrained (python -m minigpt4.tools.export minigpt ...)"
)


@dataclass
class ExportReport:
    out_dir: Path
    num_tensors: int
    shards: list[Path]
    image_token_index: int
    vocab_rows: int


def check_exportable(model: nn.Module, what: str) -> None:
    if not getattr(model, "has_qformer", False):
        arch = "MiniGPT-v2" if type(model).__name__ == "MiniGPTv2" else "this MiniGPT-4 (Llama-2 layout)"
        hint = " (merge its LoRA with `weights merge-lora`)" if arch == "MiniGPT-v2" else ""
        raise CheckpointError(f"{what}: {arch} {NO_BLIP2_CLASS}{hint}")
    if getattr(model, "lora_r", 0):
        raise CheckpointError(f"{what}: the LLM carries a LoRA adapter; merge it first (weights merge-lora)")
    llm = model.llama_model
    if getattr(llm, "is_loaded_in_8bit", False) or getattr(llm, "is_loaded_in_4bit", False):
        raise CheckpointError(
            f"{what}: the LLM is quantised (low_resource); build it with low_resource=False"
        )


def eval_image_settings(preprocess: Any, image_size: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """mean/std of the eval image processor in `preprocess` (CLIP's by default); its size must be the ViT's."""
    node = None
    if preprocess is not None:
        node = OmegaConf.select(OmegaConf.create(preprocess), "vis_processor.eval")
    if node is None:
        return CLIP_MEAN, CLIP_STD
    if int(node.get("image_size", image_size)) != image_size:
        raise CheckpointError(
            f"preprocess.vis_processor.eval.image_size is {node.image_size} but the ViT is built for {image_size}"
        )
    if node.get("random_resized_crop", False):
        raise CheckpointError(
            "the eval image processor crops at random; transformers' BLIP image processor cannot"
        )
    mean, std = node.get("mean"), node.get("std")
    return tuple(mean) if mean else CLIP_MEAN, tuple(std) if std else CLIP_STD


def export_hf_blip2(
    model: nn.Module,
    out_dir: str | Path,
    model_config: Any = None,
    preprocess: Any = None,
    tensors: Iterable[tuple[str, Tensor]] | None = None,
    max_shard_size: int | str = "2GB",
) -> ExportReport:
    """Write `model` as a `Blip2ForConditionalGeneration` folder.

    model_config / preprocess: our `model:` / `preprocess:` nodes (default: those the API loaders attach).
    tensors: where the weights come from (default `model.state_dict()`); `model` then only gives the configs,
    tokenizer and chat template, so it may live on the meta device.
    """
    check_exportable(model, "export hf-blip2")
    out_dir = Path(out_dir).expanduser()
    model_config = model_config if model_config is not None else getattr(model, "minigpt4_config", None)
    if model_config is None:
        raise CheckpointError("export hf-blip2: pass model_config=<the model: node the model was built from>")
    model_cfg = OmegaConf.to_container(OmegaConf.create(model_config), resolve=True)
    preprocess = preprocess if preprocess is not None else getattr(model, "minigpt4_preprocess", None)
    vit, qformer, llm_config = model.visual_encoder.cfg, model.Qformer.config, model.llama_model.config
    tokenizer = model.llama_tokenizer
    if tokenizer is None:
        raise CheckpointError("export hf-blip2: the model has no tokenizer (its llama_model folder has none)")
    tokenizer_dir = resolve_path(str(model_cfg.get("llama_model", "")))
    if tokenizer_dir is None:
        raise CheckpointError("export hf-blip2: model.llama_model is not set; the tokenizer is read from it")
    mean, std = eval_image_settings(preprocess, vit.image_size)
    conv = template_for(str(model_cfg.get("arch", "minigpt4")), str(model_cfg.get("model_type", "")))

    processor = build_processor(
        Path(tokenizer_dir), tokenizer, conv, qformer.num_query_token, vit.image_size, mean, std
    )
    image_index = image_token_id(processor)
    config, vocab_rows = exported_config(model, image_index)

    out_dir.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out_dir, parse_size(max_shard_size))
    count = 0
    source = tensors if tensors is not None else model.state_dict().items()
    for key, tensor in to_transformers(source, vocab_rows):
        writer.add(key, tensor.detach().cpu())
        count += 1
    shards = writer.close()

    config.save_pretrained(str(out_dir))
    generation_config(model, image_index).save_pretrained(str(out_dir))
    save_processor(processor, out_dir)
    # transformers reads tokenizer.json; our LegacyLlamaTokenizer (and `import hf-blip2`) the sentencepiece model
    shutil.copy2(Path(tokenizer_dir) / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    # what users load must reproduce our prompt: check the folder, not the objects we saved
    check_processor(Blip2Processor.from_pretrained(str(out_dir)), tokenizer, conv, qformer.num_query_token)
    saved_cfg = {k: v for k, v in model_cfg.items() if k not in WEIGHT_PATH_KEYS}
    document = {"model": saved_cfg, "llm_vocab_size": int(llm_config.vocab_size)}
    if preprocess is not None:
        document["preprocess"] = OmegaConf.to_container(OmegaConf.create(preprocess), resolve=True)
    OmegaConf.save(OmegaConf.create(document), out_dir / EXPORT_CONFIG_NAME)
    logger.info(
        "wrote %s: %d tensors in %d shard(s), image token %d", out_dir, count, len(shards), image_index
    )
    return ExportReport(out_dir, count, shards, image_index, vocab_rows)


def exported_config(model: nn.Module, image_token_index: int) -> tuple[Blip2Config, int]:
    """The Blip2Config and the vocabulary rows of the export (the LLaMA's, grown to hold the image token)."""
    llm_config = model.llama_model.config
    vocab_rows = max(int(llm_config.vocab_size), image_token_index + 1)
    config = blip2_config(
        model.visual_encoder.cfg, model.Qformer.config, llm_config, image_token_index, vocab_rows
    )
    config.dtype = model.llama_model.dtype
    return config, vocab_rows


def manifest(
    model: nn.Module, image_token_index: int | None = None
) -> tuple[Blip2Config, dict[str, list[int]]]:
    """{transformers key: shape} the export would write, and its config, without writing anything.

    Works on the meta device. image_token_index: default the LLaMA vocab size (what a LLaMA tokenizer gives).
    """
    check_exportable(model, "hf-blip2 manifest")
    if image_token_index is None:
        image_token_index = int(model.llama_model.config.vocab_size)
    config, vocab_rows = exported_config(model, image_token_index)
    shapes = {key: list(t.shape) for key, t in to_transformers(model.state_dict().items(), vocab_rows)}
    return config, shapes


def generation_config(model: nn.Module, image_index: int) -> GenerationConfig:
    """The LLaMA's generation defaults, plus: never generate the image token (its LM-head row is zero)."""
    base = getattr(model.llama_model, "generation_config", None)
    config = GenerationConfig(**base.to_diff_dict()) if base is not None else GenerationConfig()
    config.suppress_tokens = [image_index]
    return config
