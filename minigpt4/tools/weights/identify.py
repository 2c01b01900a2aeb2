"""Which model and variant a set of tensor names and shapes belongs to (official_anatomy §5.2).

Pure functions over `{key: shape}`: no tensor data is needed. Official sizes are recognised exactly;
other sizes (tiny test models, custom LLMs) are described by their dimensions, and a MiniGPT-4
checkpoint that holds only `llama_proj` is resolved with the widths of its sibling files when given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]

LORA_KEY = re.compile(
    r"^(?P<prefix>.*?)layers\.(?P<layer>\d+)\.(?P<block>self_attn|mlp)\.(?P<module>\w+)"
    r"\.lora_(?P<which>[AB])(?P<adapter>\.[\w-]+)?\.weight$"
)
BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")
QFORMER_LAYER_KEY = re.compile(r"^Qformer\.bert\.encoder\.layer\.(\d+)\.")
LLAMA_LAYER_KEY = re.compile(r"^(?:.*\.)?layers\.(\d+)\.")

EVA_PATCH_SIZE_OFFICIAL = 14
OFFICIAL_EVA_WIDTH = 1408
OFFICIAL_QFORMER_WIDTH = 768
# (llama_proj out, in) of the released MiniGPT-4 checkpoints -> (description, arch/model_type)
OFFICIAL_MINIGPT4_PROJ = {
    (5120, 768): ("MiniGPT-4 Vicuna-13B (Q-Former, pretrained_minigpt4.pth)", "minigpt4/pretrain_vicuna0"),
    (4096, 768): ("MiniGPT-4 Vicuna-7B (Q-Former, prerained_minigpt4_7b.pth)", "minigpt4/pretrain_vicuna0"),
    (4096, 5632): (
        "MiniGPT-4 Llama-2-7B-chat (no Q-Former, pretrained_minigpt4_llama2_7b.pth)",
        "minigpt4/pretrain_llama2",
    ),
}
LLAMA_SIZES = {(4096, 32): "7B", (5120, 40): "13B", (6656, 60): "33B", (8192, 80): "65B/70B"}


@dataclass
class Identification:
    """What a checkpoint is. `model` is the `arch/model_type` it loads into, when one is certain."""

    kind: str  # minigpt4_vicuna0 | minigpt4_llama2 | minigpt4 | minigpt_v2 | minigpt_full | eva_vit | blip2_qformer
    #            | hf_llama | peft_lora_adapter | unknown
    description: str
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)  # set when the variant cannot be decided alone


def _count_indices(shapes: dict[str, Shape], pattern: re.Pattern[str]) -> int:
    indices = {int(m.group(1)) for key in shapes if (m := pattern.match(key))}
    return max(indices) + 1 if indices else 0


def lora_summary(shapes: dict[str, Shape]) -> dict[str, Any] | None:
    """LoRA tensors: rank, modules, layers and key spelling (peft 0.2.0 has no `.default` adapter segment)."""
    matches = [(m, shapes[key]) for key in shapes if (m := LORA_KEY.match(key))]
    if not matches:
        return None
    ranks = {shape[0] for m, shape in matches if m.group("which") == "A"}
    adapters = {m.group("adapter") for m, _ in matches}
    spelling = (
        "peft 0.2.0 (no adapter segment)"
        if adapters == {None}
        else "peft >= 0.3 (`.default.` adapter segment)"
    )
    return {
        "rank": ranks.pop() if len(ranks) == 1 else sorted(ranks),
        "modules": sorted({m.group("module") for m, _ in matches}),
        "layers": len({int(m.group("layer")) for m, _ in matches}),
        "num_tensors": len(matches),
        "num_params": sum(_numel(shape) for _, shape in matches),
        "spelling": spelling,
        "prefix": matches[0][0].group("prefix"),
    }


def _numel(shape: Shape) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def identify_eva(shapes: dict[str, Shape]) -> Identification:
    width = shapes["pos_embed"][-1]
    depth = _count_indices(shapes, BLOCK_KEY)
    patch = (
        shapes["patch_embed.proj.weight"][-1]
        if "patch_embed.proj.weight" in shapes
        else EVA_PATCH_SIZE_OFFICIAL
    )
    grid = round((shapes["pos_embed"][1] - 1) ** 0.5)
    details = {"width": width, "depth": depth, "patch_size": patch, "image_size": grid * patch}
    if width == OFFICIAL_EVA_WIDTH:
        note = "official eva_vit_g.pth" if depth in (39, 40) else f"EVA ViT-g width, {depth} blocks"
        return Identification("eva_vit", f"EVA ViT-g ({note}; MiniGPT uses 39 blocks)", None, details)
    return Identification(
        "eva_vit", f"EVA ViT (width {width}, {depth} blocks, {grid * patch} px)", None, details
    )


def identify_qformer(shapes: dict[str, Shape]) -> Identification:
    queries = shapes.get("query_tokens", (1, 0, 0))
    cross_key = next((s for k, s in shapes.items() if k.endswith("crossattention.self.key.weight")), None)
    details = {
        "hidden": queries[-1],
        "num_query_tokens": queries[1],
        "layers": _count_indices(shapes, QFORMER_LAYER_KEY),
        "encoder_width": cross_key[1] if cross_key else None,
        "has_ln_vision": "ln_vision.weight" in shapes,
        "has_t5_proj": "t5_proj.weight" in shapes,
    }
    official = details["hidden"] == OFFICIAL_QFORMER_WIDTH and details["encoder_width"] == OFFICIAL_EVA_WIDTH
    source = (
        "BLIP-2 FlanT5 checkpoint (blip2_pretrained_flant5xxl.pth)"
        if details["has_t5_proj"]
        else "BLIP-2 Q-Former"
    )
    size = (
        ""
        if official
        else f" (hidden {details['hidden']}, {details['layers']} layers, {details['num_query_tokens']} queries)"
    )
    return Identification("blip2_qformer", source + size, None, details)


def identify_hf_llama(shapes: dict[str, Shape], prefix: str = "") -> Identification:
    vocab, hidden = shapes[f"{prefix}model.embed_tokens.weight"]
    layers = _count_indices(
        {k[len(prefix) :]: s for k, s in shapes.items() if k.startswith(prefix)}, LLAMA_LAYER_KEY
    )
    mlp = shapes.get(f"{prefix}model.layers.0.mlp.gate_proj.weight", (0,))
    details = {"vocab_size": vocab, "hidden_size": hidden, "num_layers": layers, "intermediate_size": mlp[0]}
    size = LLAMA_SIZES.get((hidden, layers))
    family = {32001: "Vicuna v0 (or its delta: 32000 + [PAD])", 32000: "LLaMA / Llama-2 / Vicuna v1"}.get(
        vocab, "LLaMA"
    )
    name = (
        f"{family} {size}"
        if size
        else f"{family}-style LLM (hidden {hidden}, {layers} layers, vocab {vocab})"
    )
    return Identification("hf_llama", f"Hugging Face LLaMA weights: {name}", None, details)


def identify_minigpt(
    shapes: dict[str, Shape], vit_width: int | None = None, qformer_width: int | None = None
) -> Identification:
    """A MiniGPT checkpoint (official: only trainable tensors, `llama_proj.*` plus v2's LoRA)."""
    out_features, in_features = shapes["llama_proj.weight"]
    lora = lora_summary(shapes)
    details: dict[str, Any] = {"llama_proj": [out_features, in_features], "llm_hidden": out_features}
    full = any(k.startswith("visual_encoder.") for k in shapes)
    has_qformer = any(k.startswith(("Qformer.", "query_tokens")) for k in shapes)
    if full:
        details["contains"] = sorted({k.split(".")[0] for k in shapes})
    if lora:
        details["lora"] = lora
        official = (out_features, in_features) == (4096, 5632) and lora["rank"] == 64
        details["official_size"] = official
        what = (
            "MiniGPT-v2 (Llama-2-7B-chat + LoRA r=64)"
            if official
            else (
                f"MiniGPT-v2 (LLM hidden {out_features}, LoRA r={lora['rank']} on {'/'.join(lora['modules'])})"
            )
        )
        return Identification(
            "minigpt_v2", f"{what}; LoRA keys spelled {lora['spelling']}", "minigpt_v2/pretrain", details
        )
    official = OFFICIAL_MINIGPT4_PROJ.get((out_features, in_features))
    details["official_size"] = official is not None
    if official:
        kind = "minigpt4_vicuna0" if official[1].endswith("vicuna0") else "minigpt4_llama2"
        return Identification(kind, official[0], official[1], details)
    if has_qformer or (qformer_width is not None and in_features == qformer_width):
        details["qformer_width"] = in_features
        return Identification(
            "minigpt4_vicuna0",
            f"MiniGPT-4 with Q-Former (Vicuna v0 style): Q-Former width {in_features} -> LLM hidden {out_features}",
            "minigpt4/pretrain_vicuna0",
            details,
        )
    if vit_width is not None and in_features == 4 * vit_width:
        details["vit_width"] = vit_width
        return Identification(
            "minigpt4_llama2",
            f"MiniGPT-4 without Q-Former (Llama-2 style): 4 x ViT width {vit_width} -> LLM hidden {out_features}",
            "minigpt4/pretrain_llama2",
            details,
        )
    candidates = [f"minigpt4/pretrain_vicuna0 if the Q-Former width is {in_features}"]
    if in_features % 4 == 0:
        candidates.append(f"minigpt4/pretrain_llama2 if the ViT width is {in_features // 4}")
    return Identification(
        "minigpt4",
        f"MiniGPT-4 projection {in_features} -> {out_features} (no LoRA); the variant depends on the vision side: "
        "pass --vit-width/--qformer-width or inspect the folder with its eva_vit/Q-Former files",
        None,
        details,
        candidates,
    )


def identify(
    shapes: dict[str, Shape], vit_width: int | None = None, qformer_width: int | None = None
) -> Identification:
    """Classify a state dict given as {key: shape}."""
    if "llama_proj.weight" in shapes:
        return identify_minigpt(shapes, vit_width, qformer_width)
    if "pos_embed" in shapes and "blocks.0.attn.qkv.weight" in shapes:
        return identify_eva(shapes)
    if "query_tokens" in shapes or any(k.startswith("Qformer.bert.") for k in shapes):
        return identify_qformer(shapes)
    if "model.embed_tokens.weight" in shapes:
        return identify_hf_llama(shapes)
    lora = lora_summary(shapes)
    if lora:
        return Identification(
            "peft_lora_adapter",
            f"LoRA adapter (r={lora['rank']} on {'/'.join(lora['modules'])}, {lora['layers']} layers; "
            f"keys spelled {lora['spelling']})",
            None,
            {"lora": lora},
        )
    return Identification("unknown", "not a MiniGPT, EVA, Q-Former or LLaMA checkpoint", None, {})
