"""Check a merged config before any model or data work, and say exactly what is wrong.

Each section has a table of known keys with their types. Every problem becomes one line:
    train_configs/stage1.yaml: run.outptu_dir is not a key of `run` (did you mean run.output_dir?)
and all lines are raised together as one `ConfigError`.

The official keys are those the official code reads (official_anatomy.md §2.3); ours are marked.
Model keys are open to extension: any key that appears in a model default YAML is valid for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from minigpt4.common.errors import ConfigError
from minigpt4.common.paths import MODEL_CONFIG_ROOT
from minigpt4.common.registry import closest_name

NUMBER = (int, float)
TEXT = (str,)
FLAG = (bool,)
INTEGER = (int,)
LIST = (list, tuple)
MAPPING = (dict,)
ANY = (object,)

SECTIONS = ("run", "model", "preprocess", "datasets", "evaluation_datasets")

RUN_KEYS: dict[str, tuple[type, ...]] = {
    # official
    "task": TEXT,
    "runner": TEXT,
    "lr_sched": TEXT,
    "init_lr": NUMBER,
    "min_lr": NUMBER,
    "warmup_lr": NUMBER,
    "warmup_steps": INTEGER,
    "lr_decay_rate": NUMBER,
    "weight_decay": NUMBER,
    "beta2": NUMBER,
    "max_epoch": INTEGER,
    "iters_per_epoch": INTEGER,
    "num_workers": INTEGER,
    "accum_grad_iters": INTEGER,
    "log_freq": INTEGER,
    "seed": INTEGER,
    "output_dir": TEXT,
    "amp": FLAG,
    "resume_ckpt_path": TEXT,
    "evaluate": FLAG,
    "train_splits": LIST,
    "valid_splits": LIST,
    "test_splits": LIST,
    "use_dist_eval_sampler": FLAG,
    "device": TEXT,
    "world_size": INTEGER,
    "dist_url": TEXT,
    "distributed": FLAG,
    "gpu": INTEGER,
    "rank": INTEGER,
    "wandb_log": FLAG,
    "job_name": TEXT,
    "name": TEXT,
    "save_path": TEXT,
    "batch_size_train": INTEGER,
    "batch_size_eval": INTEGER,
    # ours
    "amp_dtype": TEXT,  # float16 (official, with GradScaler) or bfloat16
    "save_every_steps": INTEGER,  # 0 = only at the end of each epoch
    "max_grad_norm": NUMBER,  # gradient clipping; absent/null = none (official)
    "accum_grad_mean": FLAG,  # divide the loss by accum_grad_iters (official: False)
    "lr_scales": MAPPING,  # {parameter-name prefix: lr multiplier}, e.g. {visual_encoder: 0.3}
    "strategy": TEXT,  # ddp (default) or fsdp
    "find_unused_parameters": FLAG,
    "tensorboard_log": FLAG,
    "job_id": TEXT,
    "max_iters": INTEGER,  # stop after this many global steps (smoke runs); absent = max_epoch*iters_per_epoch
    "progress_bar": FLAG,
    # ours, fast paths (README "Fast paths"); absent/false/0 = the official recipe
    "cache_image_features": FLAG,  # reuse the frozen image side's output per processed image across epochs
    "cache_processed_images": FLAG,  # map-style datasets keep each processed image in memory after its first load
    "length_bucket_batches": INTEGER,  # sort each window of N batches by text length; 0 = shuffled batches
    "compile_image_encoder": FLAG,  # torch.compile the frozen EVA ViT
    # ours, MiniGPT-5 (runner_minigpt5, task minigpt5_generation)
    "adam_eps": NUMBER,  # AdamW eps (official MiniGPT-5: 1e-8)
    "mapper_lr_scale": NUMBER,  # lr multiplier of the output mapper (official stage 1: 10, stage 2: 1)
    "sample_every_steps": INTEGER,  # write a sample (text + PNG) to <run dir>/samples; 0 = never
    "sample_max_new_tokens": INTEGER,
    "sample_guidance_scale": NUMBER,
    "sample_inference_steps": INTEGER,
}

MODEL_KEYS: dict[str, tuple[type, ...]] = {
    "arch": TEXT,
    "model_type": TEXT,
    "vit_model": TEXT,
    "image_size": INTEGER,
    "drop_path_rate": NUMBER,
    "use_grad_checkpoint": FLAG,
    "vit_precision": TEXT,
    "freeze_vit": FLAG,
    "has_qformer": FLAG,
    "freeze_qformer": FLAG,
    "num_query_token": INTEGER,
    "q_former_model": TEXT,
    "llama_model": TEXT,
    "prompt_path": TEXT,
    "prompt_template": TEXT,
    "max_txt_len": INTEGER,
    "end_sym": TEXT,
    "low_resource": FLAG,
    "device_8bit": INTEGER,
    "ckpt": TEXT,
    "lora_r": INTEGER,
    "lora_alpha": INTEGER,
    "lora_dropout": NUMBER,
    "lora_target_modules": LIST,
    "chat_template": FLAG,
    "use_grad_checkpoint_llm": FLAG,
    "max_context_len": INTEGER,
    "prompt": TEXT,
    "freeze_llm": FLAG,
    # ours
    "llm_config": MAPPING,  # config.json fields for a randomly initialised LLM (a folder without weights)
    "random_init": LIST + TEXT,  # pretrained parts that start random on purpose: said, not warned
}

DATASET_KEYS: dict[str, tuple[type, ...]] = {
    "data_type": TEXT,
    "build_info": ANY,
    "batch_size": INTEGER,
    "sample_ratio": NUMBER,
    "vis_processor": ANY,
    "text_processor": ANY,
    "type": TEXT,
    # ours, MiniGPT-5 datasets (cc3m, vist, mmdialog)
    "output_vis_processor": ANY,
    "max_length": INTEGER,
    "seed": INTEGER,
}

EVAL_DATASET_KEYS: dict[str, tuple[type, ...]] = {
    "eval_file_path": TEXT,
    "img_path": TEXT,
    "max_new_tokens": INTEGER,
    "batch_size": INTEGER,
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "train": (
        "run.task",
        "run.lr_sched",
        "run.init_lr",
        "run.max_epoch",
        "run.output_dir",
        "model.arch",
        "model.model_type",
        "datasets",
    ),
    "eval": ("model.arch", "model.model_type", "evaluation_datasets"),
    "chat": ("model.arch", "model.model_type"),
}


def _extra_model_keys() -> set[str]:
    """Keys that any shipped model default YAML declares (tiny configs add sizes, for example)."""

    keys: set[str] = set()
    for path in Path(MODEL_CONFIG_ROOT).glob("*/*.yaml"):
        model = OmegaConf.load(path).get("model") or {}
        keys.update(str(k) for k in model)
    return keys


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        NUMBER: "a number",
        TEXT: "a string",
        FLAG: "true or false",
        INTEGER: "an integer",
        LIST: "a list",
    }
    return names.get(types, " or ".join(t.__name__ for t in types))


def _check_type(key: str, value: Any, types: tuple[type, ...]) -> str | None:
    if value is None or types is ANY:
        return None
    if types is FLAG:
        ok = isinstance(value, bool)
    elif types in (INTEGER, NUMBER):
        ok = isinstance(value, types) and not isinstance(value, bool)
    else:
        ok = isinstance(value, types)
    if ok:
        return None
    return f"{key} = {value!r} has the wrong type: expected {_type_name(types)}, got {type(value).__name__}"


def _check_section(
    prefix: str, values: dict, known: dict[str, tuple[type, ...]], open_keys: set[str] = frozenset()
):
    problems = []
    for key, value in values.items():
        dotted = f"{prefix}.{key}"
        if key in known:
            problem = _check_type(dotted, value, known[key])
            if problem:
                problems.append(problem)
        elif key not in open_keys:
            hint = closest_name(str(key), sorted(set(known) | set(open_keys)))
            did_you_mean = f" (did you mean {prefix}.{hint}?)" if hint else ""
            section = prefix.split(".")[0] if prefix.count(".") == 0 else prefix
            problems.append(f"{dotted} is not a key of `{section}`{did_you_mean}")
    return problems


def _has_path(values: dict, dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return False
        node = node[part]
    return True


def _origin(dotted: str, options: Sequence[str]) -> str | None:
    for option in options:
        if option.split("=", 1)[0] == dotted or option == dotted:
            return "--options"
    return None


def validate_config(
    config: DictConfig,
    source: str = "config",
    options: Sequence[str] = (),
    purpose: str = "train",
    user_sections: Sequence[str] = (),
) -> None:
    """Raise ConfigError listing every problem of a merged config, or return None when it is valid."""
    try:
        values = OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{source}: cannot resolve {exc.full_key or 'a value'}: {exc.msg}") from exc

    problems: list[str] = []
    for section in dict.fromkeys([*values, *user_sections]):
        if section not in SECTIONS:
            hint = closest_name(str(section), SECTIONS)
            did_you_mean = f" (did you mean {hint}?)" if hint else ""
            problems.append(
                f"{section} is not a known section{did_you_mean}; sections are {', '.join(SECTIONS)}"
            )

    problems += _check_section("run", values.get("run") or {}, RUN_KEYS)
    problems += _check_section("model", values.get("model") or {}, MODEL_KEYS, _extra_model_keys())
    for name, block in (values.get("datasets") or {}).items():
        if not isinstance(block, dict):
            problems.append(f"datasets.{name} must be a mapping, got {type(block).__name__}")
            continue
        problems += _check_section(f"datasets.{name}", block, DATASET_KEYS)
    for name, block in (values.get("evaluation_datasets") or {}).items():
        if isinstance(block, dict):
            problems += _check_section(
                f"evaluation_datasets.{name}", block, EVAL_DATASET_KEYS, set(block) - set(EVAL_DATASET_KEYS)
            )

    for dotted in REQUIRED.get(purpose, ()):
        if not _has_path(values, dotted):
            problems.append(f"{dotted} is required for {purpose} but missing")

    if problems:
        lines = []
        for problem in problems:
            key = problem.split(" ", 1)[0]
            lines.append(f"{_origin(key, options) or source}: {problem}")
        raise ConfigError("\n".join(lines))
