"""inspect identifies tiny official-format checkpoints; convert writes equal tensors to safetensors; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from minigpt4.common.errors import CheckpointError
from minigpt4.tools.weights.command import main
from minigpt4.tools.weights.convert import CONFIG_METADATA_KEY, convert_to_safetensors
from minigpt4.tools.weights.identify import identify
from minigpt4.tools.weights.inspection import inspect_checkpoint, inspect_path
from tests.conftest import PARITY

MODELS = PARITY / "models"


def variant_dirs() -> list[Path]:
    return sorted(p for p in MODELS.iterdir() if (p / "minigpt_ckpt.pth").is_file())


@pytest.mark.parametrize("variant", variant_dirs(), ids=lambda p: p.name)
def test_inspect_folder_identifies_each_official_file(variant: Path):
    """A fixture folder holds the official on-disk formats; config.json says which variant it is."""
    truth = json.loads((variant / "config.json").read_text())
    by_name = {Path(s.path).name: s for s in inspect_path(variant)}
    ckpt = by_name["minigpt_ckpt.pth"].identification
    expected_model = {
        "minigpt_v2": "minigpt_v2/pretrain",
        "minigpt4_vicuna0": "minigpt4/pretrain_vicuna0",
        "minigpt4_llama2": "minigpt4/pretrain_llama2",
    }[truth["variant"]]
    assert ckpt.model == expected_model
    assert ckpt.details["llm_hidden"] == truth["llama_config"]["hidden_size"]
    if "lora" in truth:
        assert ckpt.details["lora"]["rank"] == truth["lora"]["r"]
        assert ckpt.details["lora"]["spelling"].startswith("peft 0.2.0")
    vit = by_name["eva_vit.pth"].identification
    assert vit.kind == "eva_vit"
    assert (vit.details["width"], vit.details["depth"]) == (
        truth["vit_kwargs"]["embed_dim"],
        truth["vit_kwargs"]["depth"],
    )
    llm = by_name["llm"].identification
    assert llm.kind == "hf_llama" and llm.details["vocab_size"] == truth["llama_config"]["vocab_size"]
    if truth["has_qformer"]:
        qformer = by_name["qformer.pth"].identification
        assert qformer.kind == "blip2_qformer"
        assert qformer.details["num_query_tokens"] == truth["num_query_token"]


def test_projection_only_checkpoint_alone_is_reported_ambiguous():
    """Without the vision files, a tiny projection cannot tell Q-Former from token concatenation."""
    found = inspect_checkpoint(MODELS / "minigpt4_llama2" / "minigpt_ckpt.pth").identification
    assert found.kind == "minigpt4" and found.model is None and len(found.candidates) == 2
    resolved = inspect_checkpoint(
        MODELS / "minigpt4_llama2" / "minigpt_ckpt.pth", vit_width=48
    ).identification
    assert resolved.model == "minigpt4/pretrain_llama2"


def test_official_sizes_are_recognised_from_shapes_alone():
    assert identify({"llama_proj.weight": (5120, 768), "llama_proj.bias": (5120,)}).description.startswith(
        "MiniGPT-4 Vicuna-13B"
    )
    assert identify({"llama_proj.weight": (4096, 768)}).model == "minigpt4/pretrain_vicuna0"
    assert identify({"llama_proj.weight": (4096, 5632)}).model == "minigpt4/pretrain_llama2"
    lora = {
        f"llama_model.base_model.model.model.layers.{layer}.self_attn.{m}.lora_{ab}.default.weight": shape
        for layer in range(32)
        for m in ("q_proj", "v_proj")
        for ab, shape in (("A", (64, 4096)), ("B", (4096, 64)))
    }
    v2 = identify({"llama_proj.weight": (4096, 5632), **lora})
    assert v2.model == "minigpt_v2/pretrain" and "r=64" in v2.description
    assert v2.details["lora"]["num_params"] == 33_554_432  # official_anatomy §5.2
    assert "`.default.`" in v2.details["lora"]["spelling"]
    vicuna = identify(
        {"model.embed_tokens.weight": (32001, 5120), "model.layers.39.self_attn.q_proj.weight": (5120, 5120)}
    )
    assert vicuna.kind == "hf_llama" and "Vicuna v0" in vicuna.description and "13B" in vicuna.description


def test_convert_pth_to_safetensors_keeps_tensors_and_config(tmp_path):
    state = torch.load(MODELS / "minigpt_v2" / "minigpt_ckpt.pth", weights_only=True)["model"]
    wrapped = {
        "model": state,
        "optimizer": {"state": {}},
        "config": {"model": {"arch": "minigpt_v2"}},
        "epoch": 3,
    }
    torch.save(wrapped, tmp_path / "checkpoint_3.pth")
    out = convert_to_safetensors(tmp_path / "checkpoint_3.pth")
    assert out == tmp_path / "checkpoint_3.safetensors"
    converted = load_file(out)
    assert set(converted) == set(state)
    for key, tensor in state.items():
        assert torch.equal(converted[key], tensor)
    with safe_open(str(out), framework="pt") as handle:
        assert json.loads(handle.metadata()[CONFIG_METADATA_KEY]) == {"model": {"arch": "minigpt_v2"}}
    assert inspect_checkpoint(out).identification.model == "minigpt_v2/pretrain"


def test_convert_handles_shared_storage(tmp_path):
    shared = torch.randn(4, 3)
    torch.save({"a": shared, "b": shared, "c": shared[1:]}, tmp_path / "tied.pth")
    converted = load_file(convert_to_safetensors(tmp_path / "tied.pth", tmp_path / "tied.safetensors"))
    assert torch.equal(converted["a"], shared) and torch.equal(converted["c"], shared[1:])


def test_unreadable_file_gives_checkpoint_error(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.pth"):
        inspect_checkpoint(tmp_path / "broken.pth")


def test_cli_inspect_json_and_error_exit(tmp_path, capsys):
    assert main(["inspect", str(MODELS / "minigpt_v2" / "minigpt_ckpt.pth"), "--json", "--keys"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["identification"]["model"] == "minigpt_v2/pretrain"
    assert printed[0]["tensors"]["llama_proj.weight"]["dtype"] == "float32"
    assert main(["inspect", str(tmp_path / "missing.pth")]) == 1
    assert "CheckpointError" in capsys.readouterr().err


def test_runner_checkpoint_config_names_the_exact_model_type(tmp_path):
    """Official runner checkpoints carry `config`: a tiny projection is then resolved without sibling files."""
    state = torch.load(MODELS / "minigpt4_llama2" / "minigpt_ckpt.pth", weights_only=True)["model"]
    config = {
        "model": {"arch": "minigpt4", "model_type": "tiny_llama2"},
        "run": {"task": "image_text_pretrain"},
    }
    torch.save({"model": state, "optimizer": {}, "config": config, "epoch": 1}, tmp_path / "checkpoint_1.pth")
    summary = inspect_checkpoint(tmp_path / "checkpoint_1.pth")
    assert summary.identification.model == "minigpt4/tiny_llama2" and not summary.identification.candidates
    assert set(summary.other_entries) == {"optimizer", "config", "epoch"}


def test_cli_convert_and_merge_and_delta(tmp_path, capsys):
    assert (
        main(["convert", str(MODELS / "minigpt_v2" / "minigpt_ckpt.pth"), str(tmp_path / "v2.safetensors")])
        == 0
    )
    assert (tmp_path / "v2.safetensors").is_file()
    llm = MODELS / "minigpt_v2" / "llm"
    assert (
        main(
            [
                "merge-lora",
                "--ckpt",
                str(tmp_path / "v2.safetensors"),
                "--llm",
                str(llm),
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert "merged 4 LoRA weights (r=4, alpha=16)" in capsys.readouterr().out
    # the merged LLM plus itself as a zero delta gives back the merged LLM: exercises the apply-delta command
    zero = tmp_path / "zero-delta"
    zero.mkdir()
    from safetensors.torch import save_file

    save_file(
        {k: torch.zeros_like(v) for k, v in load_file(tmp_path / "m" / "model.safetensors").items()},
        str(zero / "model.safetensors"),
    )
    (zero / "config.json").write_text((tmp_path / "m" / "config.json").read_text())
    args = [
        "apply-delta",
        "--base",
        str(tmp_path / "m"),
        "--delta",
        str(zero),
        "--target",
        str(tmp_path / "t"),
        "--dtype",
        "float32",
    ]
    assert main(args) == 0
    merged, target = (
        load_file(tmp_path / "m" / "model.safetensors"),
        load_file(tmp_path / "t" / "model.safetensors"),
    )
    # transformers-4.30 files carry rotary_emb.inv_freq buffers; apply-delta drops them (recomputed on load)
    kept = [k for k in merged if not k.endswith("rotary_emb.inv_freq")]
    assert len(kept) < len(merged) and set(target) == set(kept)
    assert all(torch.equal(merged[k], target[k]) for k in kept)


@pytest.mark.parametrize(
    ("model_type", "lora_rank"),
    [("minigpt4/tiny_vicuna0", 0), ("minigpt4/tiny_llama2", 0), ("minigpt_v2/tiny", 8)],
)
def test_tiny_quickstart_checkpoints_fit_their_model_type(model_type, lora_rank, tmp_path):
    """A projection(+LoRA)-only checkpoint of a tiny type is matched against configs/models/*.yaml."""
    from omegaconf import OmegaConf

    from minigpt4 import LIBRARY_ROOT

    arch, name = model_type.split("/")
    cfg = OmegaConf.load(LIBRARY_ROOT / "configs" / "models" / arch / f"{name}.yaml").model
    hidden = json.loads((LIBRARY_ROOT / cfg.llama_model / "config.json").read_text())["hidden_size"]
    in_features = cfg.qformer_hidden_size if cfg.get("has_qformer", False) else 4 * cfg.vit_width
    state = {"llama_proj.weight": torch.zeros(hidden, in_features), "llama_proj.bias": torch.zeros(hidden)}
    for layer in range(2):
        for module in ("q_proj", "v_proj") if lora_rank else ():
            prefix = f"llama_model.base_model.model.model.layers.{layer}.self_attn.{module}"
            state[f"{prefix}.lora_A.weight"] = torch.zeros(lora_rank, hidden)
            state[f"{prefix}.lora_B.weight"] = torch.zeros(hidden, lora_rank)
    torch.save({"model": state}, tmp_path / "ckpt.pth")
    found = inspect_checkpoint(tmp_path / "ckpt.pth").identification
    assert found.model == model_type and found.details["fits_configs"] == [model_type]
