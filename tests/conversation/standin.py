"""A tiny stand-in MiniGPT model for Chat tests: a 2-layer random LLaMA, a sentencepiece tokenizer, and an image
encoder that pools the picture into 4 tokens. It follows the model API `Chat` relies on
(`encode_img`, `get_context_emb` with the official BOS-on-first-segment split, `llama_model`, `llama_tokenizer`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from minigpt4.models.tokenizer import load_llama_tokenizer

CORPUS = [
    "Human: Assistant: ### [INST] [/INST] <Img></Img> describe this image in detail",
    "a cat sits on a red mat near a green tree. the dog runs in the park. what is this? it is a bird.",
    "<p>a dog</p> {<10><20><30><40>} <delim> [refer] [grounding] [identify] [vqa] [detection] 0123456789",
]


def build_tokenizer(folder: Path):
    import sentencepiece as spm

    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=400, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    return load_llama_tokenizer(str(folder))


class StandInModel(nn.Module):
    def __init__(self, tokenizer, hidden: int = 32, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.llama_tokenizer = tokenizer
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
            pad_token_id=0, bos_token_id=1, eos_token_id=2,
        )  # fmt: skip
        self.llama_model = LlamaForCausalLM(config).eval()
        self.image_proj = nn.Linear(3, hidden)

    @property
    def device(self) -> torch.device:
        return self.image_proj.weight.device

    def encode_img(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, 3, H, W) -> embeds (B, 4, D), mask (B, 4)."""
        pooled = nn.functional.adaptive_avg_pool2d(image, 2).flatten(2).transpose(1, 2)  # (B, 4, 3)
        embeds = self.image_proj(pooled)
        return embeds, torch.ones(embeds.shape[:2], dtype=torch.long)

    def get_context_emb(self, prompt: str, img_list: list[torch.Tensor]) -> torch.Tensor:
        segments = prompt.split("<ImageHere>")
        assert len(segments) == len(img_list) + 1, "one image per <ImageHere>"
        embed = self.llama_model.get_input_embeddings()
        parts = []
        for index, segment in enumerate(segments):
            ids = self.llama_tokenizer(segment, return_tensors="pt", add_special_tokens=index == 0).input_ids
            parts.append(embed(ids))
            if index < len(img_list):
                parts.append(img_list[index])
        return torch.cat(parts, dim=1)  # (1, L, D)


def vis_processor(image) -> torch.Tensor:
    """PIL image -> (3, 16, 16) float tensor."""
    import numpy as np

    array = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)
