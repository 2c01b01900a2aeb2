"""`python -m minigpt4.tools.manifest --cfg-path <train or eval yaml> [--options ...]`

Builds the full model of a config on the `meta` device (no weight file is read; `model.llama_model` may be a
directory holding only the LLM's config.json) and prints one JSON object {state_dict key: shape}, keys in the
official spelling (MiniGPT-4/v2: peft 0.2.0, no `.default`, no `base_layer`; MiniGPT-5: the Lightning module's
names). Shapes are those of the unquantised model, also when the config sets `low_resource`. `--trainable`
prints only the keys that train, as a JSON list (what an official checkpoint holds).

MiniGPT-5 at real size: `--cfg-path minigpt4/configs/models/minigpt5/stage1_vicuna0.yaml --options
model.llama_model=<vicuna-7b folder, config.json is enough> model.sd_model=assets/sd21_base`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import torch

from minigpt4.common.errors import MiniGPTError


def build_on_meta(model_cfg: Any) -> torch.nn.Module:
    from minigpt4.common.registry import registry

    cls = registry.get_model_class(str(model_cfg.get("arch")))
    with torch.device("meta"):
        return cls.from_config(model_cfg, load_weights=False)


def manifest(model: torch.nn.Module) -> dict[str, list[int]]:
    """{official key: shape}; a model with its own official naming (MiniGPT-5's Lightning names) supplies it."""
    from minigpt4.models.checkpoint import official_key

    name = getattr(model, "official_key", official_key)
    return {name(k): list(v.shape) for k, v in model.state_dict().items()}


def trainable_keys(model: torch.nn.Module) -> list[str]:
    """Official names of the parameters that train (what the official checkpoints hold)."""
    from minigpt4.models.checkpoint import official_key

    name = getattr(model, "official_key", official_key)
    return sorted(name(k) for k, p in model.named_parameters() if p.requires_grad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minigpt4.tools.manifest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cfg-path", required=True, help="train or eval YAML")
    parser.add_argument(
        "--options", nargs="+", default=None, help="key=value overrides, e.g. model.llama_model=DIR"
    )
    parser.add_argument(
        "--trainable", action="store_true", help="print only the trainable keys (a JSON list)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    try:
        from minigpt4.common.config import merge_config

        cfg = merge_config(args.cfg_path, args.options)
        if cfg.get("model") is None:
            print(f"manifest: {args.cfg_path} has no model section", file=sys.stderr)
            return 2
        model = build_on_meta(cfg.model)
    except MiniGPTError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.trainable:
        print(json.dumps(trainable_keys(model), indent=1))
        return 0
    entries = manifest(model)
    print("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items()) + "\n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
