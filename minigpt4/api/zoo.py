"""The model zoo: names -> (arch, model_type, official eval settings, the weights each model needs).

Weights are never hard-coded paths: every `WeightSpec` is resolved by `locate.py` (arguments, environment,
user config file, weights folder), and a missing one raises a message with its download source.
The `*_shapes` models are the tiny models `make quickstart` trains; they are saved model folders.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from minigpt4.api.locate import WeightSpec
from minigpt4.common.errors import RegistryError

LAVIS_BLIP2 = "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/BLIP2"
DELTA_RECIPE = (
    "python -m minigpt4.tools.weights apply-delta --base LLAMA_DIR --delta DELTA_DIR --target OUT_DIR"
)

EVA_VIT_G = WeightSpec(
    "vit_ckpt",
    "eva_vit_g",
    "eva_vit_g.pth",
    "EVA ViT-g/14 vision encoder from BLIP-2",
    f"{LAVIS_BLIP2}/eva_vit_g.pth",
)
BLIP2_QFORMER = WeightSpec(
    "q_former_model",
    "blip2_qformer",
    "blip2_pretrained_flant5xxl.pth",
    "BLIP-2 Q-Former and ln_vision (FlanT5-XXL stage-2 checkpoint)",
    f"{LAVIS_BLIP2}/blip2_pretrained_flant5xxl.pth",
)
VICUNA_7B = WeightSpec(
    "llama_model",
    "vicuna-7b-v0",
    "vicuna-7b",
    "Vicuna-7B v0 LLM, a Hugging Face folder with tokenizer.model",
    "https://huggingface.co/Vision-CAIR/vicuna-7b (git lfs clone), or build it from LLaMA-7B and "
    f"https://huggingface.co/lmsys/vicuna-7b-delta-v0 with `{DELTA_RECIPE}`",
    is_dir=True,
)
VICUNA_13B = WeightSpec(
    "llama_model",
    "vicuna-13b-v0",
    "vicuna-13b",
    "Vicuna-13B v0 LLM, a Hugging Face folder with tokenizer.model",
    "https://huggingface.co/Vision-CAIR/vicuna (git lfs clone), or build it from LLaMA-13B and "
    f"https://huggingface.co/lmsys/vicuna-13b-delta-v0 with `{DELTA_RECIPE}`",
    is_dir=True,
)
LLAMA2_7B_CHAT = WeightSpec(
    "llama_model",
    "llama-2-7b-chat",
    "Llama-2-7b-chat-hf",
    "Llama-2-7B-chat LLM, a Hugging Face folder with tokenizer.model",
    "https://huggingface.co/meta-llama/Llama-2-7b-chat-hf (accept the Llama 2 license first)",
    is_dir=True,
)


# MiniGPT-5 (issue #21; zoo entries come with the demo/evaluation work): the weights its configs name.
MINIGPT5_HF = "https://huggingface.co/KZ-ucsc/MiniGPT5"
SD21_BASE = WeightSpec(
    "sd_model",
    "stable-diffusion-2-1-base",
    "stable-diffusion-2-1-base",
    "Stable Diffusion 2.1-base, a diffusers folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/)",
    "https://huggingface.co/stabilityai/stable-diffusion-2-1-base (git lfs clone)",
    is_dir=True,
)
MINIGPT5_STAGE1_CC3M = WeightSpec(
    "stage1_ckpt", "minigpt-5_stage1-cc3m", "stage1_cc3m.ckpt", "MiniGPT-5 stage-1 (CC3M) Lightning checkpoint",
    f"{MINIGPT5_HF}/blob/main/stage1_cc3m.ckpt",
)  # fmt: skip
MINIGPT5_STAGE2_VIST = WeightSpec(
    "stage2_ckpt", "minigpt-5_stage2-vist", "stage2_vist.ckpt", "MiniGPT-5 stage-2 (VIST) Lightning checkpoint",
    f"{MINIGPT5_HF}/blob/main/stage2_vist.ckpt",
)  # fmt: skip
MINIGPT5_STAGE2_MMDIALOG = WeightSpec(
    "stage2_ckpt", "minigpt-5_stage2-mmdialog", "stage2_mmdialog.ckpt",
    "MiniGPT-5 stage-2 (MMDialog) Lightning checkpoint", f"{MINIGPT5_HF}/blob/main/stage2_mmdialog.ckpt",
)  # fmt: skip


def _minigpt_ckpt(weight_id: str, filename: str, what: str, source: str) -> WeightSpec:
    return WeightSpec("ckpt", weight_id, filename, what, source)


@dataclass(frozen=True)
class ZooEntry:
    """A named, ready-to-use model.

    overrides: `model:` keys applied on top of the model type's default YAML (the official eval config values).
    default_question: the instruction used when none is given (captioning).
    weights: what must be located before building; a "model_dir" spec means a saved model folder.
    """

    name: str
    arch: str
    model_type: str
    task: str  # caption | vqa
    weights: tuple[WeightSpec, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    default_question: str = "Describe this image in detail."
    description: str = ""
    prompt_format: str = ""  # MiniGPT-5: the training format its prompts follow (cc3m, vist, mmdialog)

    @property
    def is_saved_folder(self) -> bool:
        return any(spec.config_key == "model_dir" for spec in self.weights)


VICUNA0_EVAL = {"max_txt_len": 160, "end_sym": "###", "prompt_template": "###Human: {} ###Assistant: "}
LLAMA2_EVAL = {"max_txt_len": 160, "end_sym": "</s>", "prompt_template": "[INST] {} [/INST] "}
V2_EVAL = {"max_txt_len": 500, "end_sym": "</s>", "prompt_template": "[INST] {} [/INST]"}


def _shapes_entry(name: str, arch: str, model_type: str, what: str) -> ZooEntry:
    spec = WeightSpec(
        "model_dir",
        name,
        name,
        f"the tiny {what} trained on the generated shapes world (a saved model folder)",
        f"run `make quickstart`, which trains it and saves it to the weights folder as {name}/",
        is_dir=True,
    )
    return ZooEntry(
        name, arch, model_type, "caption", (spec,), description=f"tiny {what}, shapes world (quickstart)"
    )


_ENTRIES = [
    ZooEntry(
        "minigpt-4_vicuna-7b_caption",
        "minigpt4",
        "pretrain_vicuna0",
        "caption",
        (
            VICUNA_7B,
            _minigpt_ckpt(
                "minigpt-4_vicuna-7b",
                "prerained_minigpt4_7b.pth",
                "MiniGPT-4 (Vicuna-7B) projection checkpoint (the file name has the official typo)",
                "https://drive.google.com/file/d/1RY9jV0dyqLX-o38LrumkKRh6Jtaop58R/view (MiniGPT-4 README)",
            ),
            EVA_VIT_G,
            BLIP2_QFORMER,
        ),
        VICUNA0_EVAL,
        description="MiniGPT-4, Vicuna-7B v0, EVA ViT-g + Q-Former, 224 px",
    ),
    ZooEntry(
        "minigpt-4_vicuna-13b_caption",
        "minigpt4",
        "pretrain_vicuna0",
        "caption",
        (
            VICUNA_13B,
            _minigpt_ckpt(
                "minigpt-4_vicuna-13b",
                "pretrained_minigpt4.pth",
                "MiniGPT-4 (Vicuna-13B) projection checkpoint",
                "https://drive.google.com/file/d/1a4zLvaiDBr-36pasffmgpvH5P7CKmpze/view "
                "(also https://huggingface.co/Vision-CAIR/MiniGPT-4)",
            ),
            EVA_VIT_G,
            BLIP2_QFORMER,
        ),
        VICUNA0_EVAL,
        description="MiniGPT-4, Vicuna-13B v0, EVA ViT-g + Q-Former, 224 px",
    ),
    ZooEntry(
        "minigpt-4_llama2-7b_caption",
        "minigpt4",
        "pretrain_llama2",
        "caption",
        (
            LLAMA2_7B_CHAT,
            _minigpt_ckpt(
                "minigpt-4_llama2-7b",
                "pretrained_minigpt4_llama2_7b.pth",
                "MiniGPT-4 (Llama-2-7B-chat) projection checkpoint",
                "https://drive.google.com/file/d/11nAPjEok8eAGGEG1N2vXo3kBLCg0WgUk/view (MiniGPT-4 README)",
            ),
            EVA_VIT_G,
        ),
        LLAMA2_EVAL,
        description="MiniGPT-4, Llama-2-7B-chat, EVA ViT-g with 4-token concatenation, 224 px",
    ),
    ZooEntry(
        "minigpt-v2_llama2-7b",
        "minigpt_v2",
        "pretrain",
        "vqa",
        (
            LLAMA2_7B_CHAT,
            _minigpt_ckpt(
                "minigpt-v2_llama2-7b",
                "minigptv2_checkpoint.pth",
                "MiniGPT-v2 checkpoint (llama_proj + LoRA)",
                "https://drive.google.com/file/d/1aVbfW7nkCSYx99_vCRyP1sOlQiWVSnAl/view (online demo); stage 3: "
                "https://drive.google.com/file/d/1HkoUUrjzFGn33cSiUkI-KcT-zysCynAz/view (MiniGPT-v2 README)",
            ),
            EVA_VIT_G,
        ),
        V2_EVAL,
        default_question="[grounding] describe this image in detail",
        description="MiniGPT-v2, Llama-2-7B-chat + LoRA, 448 px; task tags [vqa] [caption] [refer] [grounding] ...",
    ),
    _shapes_entry(
        "minigpt-4_tiny-vicuna0_shapes", "minigpt4", "tiny_vicuna0", "MiniGPT-4 (Q-Former, Vicuna-style)"
    ),
    _shapes_entry("minigpt-v2_tiny_shapes", "minigpt_v2", "tiny", "MiniGPT-v2 (LoRA)"),
]
MINIGPT4_7B_CKPT = _minigpt_ckpt(
    "minigpt-4_vicuna-7b",
    "prerained_minigpt4_7b.pth",
    "MiniGPT-4 (Vicuna-7B) projection checkpoint (the file name has the official typo)",
    "https://drive.google.com/file/d/1RY9jV0dyqLX-o38LrumkKRh6Jtaop58R/view (MiniGPT-4 README; MiniGPT-5 "
    "keeps it as config/prerained_minigpt4_7b.pth)",
)
MINIGPT5_BASE = (VICUNA_7B, MINIGPT4_7B_CKPT, EVA_VIT_G, BLIP2_QFORMER, SD21_BASE, MINIGPT5_STAGE1_CC3M)


def _minigpt5_entry(name: str, model_type: str, weights: tuple, fmt: str, what: str) -> ZooEntry:
    return ZooEntry(
        name, "minigpt5", model_type, "interleaved", weights, description=what, prompt_format=fmt,
        default_question="",
    )  # fmt: skip


_ENTRIES += [
    _minigpt5_entry(
        "minigpt-5_vicuna-7b_cc3m",
        "stage1_vicuna0",
        MINIGPT5_BASE,
        "cc3m",
        "MiniGPT-5 stage 1 (CC3M): caption -> image; Vicuna-7B v0 + SD-2.1-base",
    ),
    _minigpt5_entry(
        "minigpt-5_vicuna-7b_vist",
        "stage2_vicuna0",
        (*MINIGPT5_BASE, MINIGPT5_STAGE2_VIST),
        "vist",
        "MiniGPT-5 stage 2 (VIST): story text + images -> next scene image; Vicuna-7B v0 + LoRA + SD-2.1-base",
    ),
    _minigpt5_entry(
        "minigpt-5_vicuna-7b_mmdialog",
        "stage2_vicuna0",
        (*MINIGPT5_BASE, MINIGPT5_STAGE2_MMDIALOG),
        "mmdialog",
        "MiniGPT-5 stage 2 (MMDialog): dialogue with images; Vicuna-7B v0 + LoRA + SD-2.1-base",
    ),
    ZooEntry(
        "minigpt-5_tiny_shapes",
        "minigpt5",
        "tiny_stage2",
        "interleaved",
        (
            WeightSpec(
                "model_dir",
                "minigpt-5_tiny_shapes",
                "minigpt-5_tiny_shapes",
                "the tiny MiniGPT-5 trained on the generated shapes world (a training run folder)",
                "run `make quickstart`, which trains it (outputs/quickstart/minigpt5_stage2/)",
                is_dir=True,
            ),
        ),
        description="tiny MiniGPT-5 (stage 2, VIST-format stories), shapes world (quickstart)",
        prompt_format="vist",
        default_question="",
    ),
]
MODEL_ZOO: dict[str, ZooEntry] = {entry.name: entry for entry in _ENTRIES}


def register_zoo_entry(entry: ZooEntry, overwrite: bool = False) -> ZooEntry:
    """Add a name to the zoo (your own trained models, test models)."""
    if entry.name in MODEL_ZOO and not overwrite:
        raise RegistryError(f"zoo name {entry.name!r} already exists; pass overwrite=True to replace it")
    MODEL_ZOO[entry.name] = entry
    return entry


def list_models(pattern: str | None = None) -> list[str]:
    """Zoo names, sorted; `pattern` keeps names containing it (e.g. "shapes", "v2")."""
    return sorted(name for name in MODEL_ZOO if pattern is None or pattern in name)


def get_entry(name: str) -> ZooEntry:
    if name in MODEL_ZOO:
        return MODEL_ZOO[name]
    close = difflib.get_close_matches(name, list(MODEL_ZOO), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RegistryError(f"unknown model name {name!r}{hint}; available: {', '.join(list_models())}")
