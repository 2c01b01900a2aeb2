"""A transformers `Blip2ForConditionalGeneration` folder (LLaMA text model) -> our `save_pretrained` folder.

    python -m minigpt4.tools.export import hf-blip2 DIR --out OURS

A folder written by `export hf-blip2` carries `minigpt4_export.yaml`: our config comes back from it and the
weights come back bit for bit (the image token's vocabulary rows are dropped, the qkv bias is split, the Q-Former
`position_ids` buffer is rebuilt). Any other MiniGPT-4-shaped BLIP-2 folder gets its sizes from `config.json` and
the Vicuna v0 prompt settings. Tensors stream one at a time, one output shard in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import Tensor
from transformers import Blip2Config, LlamaConfig

from minigpt4.api.hub import CONFIG_NAME, LLM_SUBDIR
from minigpt4.common.errors import CheckpointError
from minigpt4.models.checkpoint_shards import ShardWriter, WeightSource, parse_size
from minigpt4.tools.export.blip2_config import model_settings
from minigpt4.tools.export.blip2_processor import IMAGE_TOKEN, TOKENIZER_FILE
from minigpt4.tools.export.blip2_weights import to_minigpt4
from minigpt4.tools.export.hf_blip2 import EXPORT_CONFIG_NAME

logger = logging.getLogger(__name__)

# what a foreign folder (no minigpt4_export.yaml) gets besides its sizes: the official Vicuna v0 chat settings
VICUNA0_DEFAULTS = {
    "model_type": "pretrain_vicuna0",
    "prompt_template": "###Human: {} ###Assistant: ",
    "end_sym": "###",
    "max_txt_len": 160,
    "vit_precision": "fp32",
    "llama_dtype": "float32",
}
LLAMA_TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "add_bos_token": True,
    "add_eos_token": False,
    "clean_up_tokenization_spaces": False,
}


@dataclass
class ImportReport:
    out_dir: Path
    num_tensors: int
    shards: list[Path]
    from_export: bool


def read_export_document(src: Path) -> dict[str, Any] | None:
    path = src / EXPORT_CONFIG_NAME
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) if path.is_file() else None


def read_blip2_config(src: Path) -> Blip2Config:
    if not (src / "config.json").is_file():
        raise CheckpointError(f"{src}: no config.json; expected a Blip2ForConditionalGeneration folder")
    architectures = json.loads((src / "config.json").read_text()).get("architectures") or []
    if architectures and "Blip2ForConditionalGeneration" not in architectures:
        raise CheckpointError(f"{src}: config.json is for {architectures}, not Blip2ForConditionalGeneration")
    return Blip2Config.from_pretrained(str(src))


def write_llm_side_files(src: Path, config: Blip2Config, vocab_size: int | None, target: Path) -> None:
    """llm/: the LLaMA config (vocab without the image token's rows) and the sentencepiece tokenizer."""
    target.mkdir(parents=True, exist_ok=True)
    text = config.text_config.to_dict()
    if vocab_size is not None:
        text["vocab_size"] = vocab_size
    text["architectures"] = ["LlamaForCausalLM"]
    LlamaConfig(**text).save_pretrained(str(target))
    if not (src / TOKENIZER_FILE).is_file():
        raise CheckpointError(
            f"{src}: no {TOKENIZER_FILE}; our LLaMA tokenizer is sentencepiece-based (export hf-blip2 writes it)"
        )
    shutil.copy2(src / TOKENIZER_FILE, target / TOKENIZER_FILE)
    settings = (
        json.loads((src / "tokenizer_config.json").read_text())
        if (src / "tokenizer_config.json").is_file()
        else {}
    )
    tokenizer_config = dict(LLAMA_TOKENIZER_CONFIG)
    tokenizer_config.update(
        {k: settings[k] for k in ("bos_token", "eos_token", "unk_token", "model_max_length") if k in settings}
    )
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


def iter_tensors(src: Path) -> Iterator[tuple[str, Tensor]]:
    for opened in WeightSource.open(src).iter_files():
        for key in opened.names():
            yield key, opened.get(key)


def import_hf_blip2(src: str | Path, out_dir: str | Path, max_shard_size: int | str = "2GB") -> ImportReport:
    """Write our `save_pretrained` folder (minigpt4_config.yaml, safetensors, llm/) for a BLIP-2 folder."""
    src, out_dir = Path(src).expanduser(), Path(out_dir).expanduser()
    config = read_blip2_config(src)
    settings = model_settings(config)
    document = read_export_document(src)
    if document is not None:
        model_cfg = {**settings, **document["model"]}  # ours as exported (e.g. vit_mlp_ratio 4.3637)
        vocab_size = int(document["llm_vocab_size"])
        preprocess = document.get("preprocess")
    else:
        model_cfg = {**VICUNA0_DEFAULTS, **settings}
        # a foreign folder's vocabulary stays whole, image token row included (it is never generated by us)
        vocab_size = None
        preprocess = None
    image_size = int(model_cfg["image_size"])
    model_cfg.update(llama_model=LLM_SUBDIR)
    if preprocess is None:
        preprocess = {"vis_processor": {"eval": {"name": "blip2_image_eval", "image_size": image_size}}}

    out_dir.mkdir(parents=True, exist_ok=True)
    write_llm_side_files(src, config, vocab_size, out_dir / LLM_SUBDIR)
    writer = ShardWriter(out_dir, parse_size(max_shard_size))
    count = 0
    positions = int(config.qformer_config.max_position_embeddings)
    for key, tensor in to_minigpt4(iter_tensors(src), vocab_size, positions):
        writer.add(key, tensor)
        count += 1
    shards = writer.close()
    OmegaConf.save(OmegaConf.create({"model": model_cfg, "preprocess": preprocess}), out_dir / CONFIG_NAME)
    logger.info(
        "wrote %s: %d tensors in %d shard(s) (image token %s dropped)",
        out_dir,
        count,
        len(shards),
        IMAGE_TOKEN,
    )
    return ImportReport(out_dir, count, shards, document is not None)
