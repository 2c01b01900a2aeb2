"""Vicuna v0 delta application: exact equality with the in-memory FastChat recipe, and peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from minigpt4.common.errors import CheckpointError
from minigpt4.tools.weights.delta import apply_delta

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_VOCAB, DELTA_VOCAB = 96, 97  # the v0 delta adds one [PAD] row


def tiny_llama(vocab: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.5)
    return model


def save_as_bin_shards(state: dict[str, torch.Tensor], out: Path, per_shard: int) -> None:
    """The layout of the released delta: pytorch_model-0000k-of-0000N.bin + pytorch_model.bin.index.json."""
    keys = list(state)
    groups = [keys[i : i + per_shard] for i in range(0, len(keys), per_shard)]
    weight_map = {}
    for number, group in enumerate(groups, start=1):
        name = f"pytorch_model-{number:05d}-of-{len(groups):05d}.bin"
        torch.save({k: state[k].clone() for k in group}, out / name)
        weight_map.update(dict.fromkeys(group, name))
    (out / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.fixture(scope="module")
def llama_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("delta")
    base_dir, delta_dir = root / "llama", root / "vicuna-delta-v0"
    base = tiny_llama(BASE_VOCAB, seed=0)
    base.save_pretrained(base_dir, max_shard_size="40KB")  # fp32 safetensors shards
    delta = tiny_llama(DELTA_VOCAB, seed=1).half()
    delta_dir.mkdir()
    delta.config.save_pretrained(delta_dir)
    save_as_bin_shards(delta.state_dict(), delta_dir, per_shard=5)
    (delta_dir / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))
    assert len(list(base_dir.glob("model-*.safetensors"))) > 2, "the test needs a sharded base"
    return base_dir, delta_dir


def fastchat_reference(base_dir: Path, delta_dir: Path) -> dict[str, torch.Tensor]:
    """FastChat v0.1.10 apply_delta, in memory: fp16 base, [PAD] row resized in and zeroed, += delta."""
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float16)
    delta = LlamaForCausalLM.from_pretrained(delta_dir, dtype=torch.float16)
    num_new = DELTA_VOCAB - BASE_VOCAB
    base.resize_token_embeddings(DELTA_VOCAB, mean_resizing=False)
    base.get_input_embeddings().weight.data[-num_new:] = 0
    base.get_output_embeddings().weight.data[-num_new:] = 0
    delta_state = delta.state_dict()
    state = base.state_dict()
    for name, param in state.items():
        param.data += delta_state[name]
    return state


def test_apply_delta_reproduces_fastchat_recipe_exactly(llama_dirs, tmp_path):
    from transformers import LlamaForCausalLM

    base_dir, delta_dir = llama_dirs
    report = apply_delta(base_dir, delta_dir, tmp_path / "vicuna", max_shard_size="30KB")
    assert len(report.shards) > 1 and (tmp_path / "vicuna" / "model.safetensors.index.json").is_file()
    assert report.vocab_size == DELTA_VOCAB
    config = json.loads((tmp_path / "vicuna" / "config.json").read_text())
    assert config["vocab_size"] == DELTA_VOCAB and config["torch_dtype"] == "float16"
    assert json.loads((tmp_path / "vicuna" / "tokenizer_config.json").read_text())["pad_token"] == "[PAD]"

    ours = LlamaForCausalLM.from_pretrained(tmp_path / "vicuna", dtype=torch.float16).state_dict()
    expected = fastchat_reference(base_dir, delta_dir)
    assert set(ours) == set(expected)
    for name, tensor in expected.items():
        assert ours[name].dtype == torch.float16
        assert torch.equal(ours[name], tensor), name
    # the [PAD] row is exactly the delta's row (zero base row), as FastChat makes it
    assert not torch.equal(expected["model.embed_tokens.weight"][-1], torch.zeros(32, dtype=torch.float16))


def test_apply_delta_rejects_mismatched_sizes(llama_dirs, tmp_path):
    base_dir, _ = llama_dirs
    wrong = tmp_path / "delta-13b"
    model = tiny_llama(DELTA_VOCAB, seed=2)
    model.config.hidden_size = 48
    from transformers import LlamaForCausalLM

    LlamaForCausalLM(model.config).save_pretrained(wrong)
    with pytest.raises(CheckpointError, match="does not match delta shape"):
        apply_delta(base_dir, wrong, tmp_path / "out")


def test_apply_delta_missing_delta_says_where_to_get_it(llama_dirs, tmp_path):
    base_dir, _ = llama_dirs
    with pytest.raises(CheckpointError, match="lmsys/vicuna-13b-delta-v0"):
        apply_delta(base_dir, tmp_path / "nowhere", tmp_path / "out")


PEAK_SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    from minigpt4.tools.weights.delta import apply_delta

    def kib(field):
        return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

    open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) after the imports
    start = kib("VmRSS")
    apply_delta(sys.argv[1], sys.argv[2], sys.argv[3])
    print(json.dumps({"start_kib": start, "peak_kib": kib("VmHWM")}))
    """
)


def write_big_llama_like(out: Path, seed: int, layers: int, width: int, vocab: int) -> tuple[int, int]:
    """A LLaMA-keyed fp16 checkpoint with one file per layer (no transformers init: fast). Returns (model, shard) bytes."""
    out.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    weight_map, total, largest = {}, 0, 0

    def rand(*shape):
        return torch.randn(*shape, generator=generator).half()

    files = {"model-embed.safetensors": {"model.embed_tokens.weight": rand(vocab, width)}}
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        files[f"model-layer{layer:03d}.safetensors"] = {
            **{
                f"{prefix}self_attn.{m}.weight": rand(width, width)
                for m in ("q_proj", "k_proj", "v_proj", "o_proj")
            },
            **{f"{prefix}mlp.{m}.weight": rand(2 * width, width) for m in ("gate_proj", "up_proj")},
            f"{prefix}mlp.down_proj.weight": rand(width, 2 * width),
        }
    files["model-head.safetensors"] = {"model.norm.weight": rand(width), "lm_head.weight": rand(vocab, width)}
    for name, tensors in files.items():
        save_file(tensors, str(out / name), metadata={"format": "pt"})
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        total, largest = total + size, max(largest, size)
        weight_map.update(dict.fromkeys(tensors, name))
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return total, largest


@pytest.mark.slow
def test_apply_delta_peak_memory_stays_near_one_shard(tmp_path):
    model_bytes, shard_bytes = write_big_llama_like(
        tmp_path / "base", seed=0, layers=24, width=384, vocab=512
    )
    write_big_llama_like(tmp_path / "delta", seed=1, layers=24, width=384, vocab=512)
    assert model_bytes > 20 * shard_bytes  # ~76 MB of weights per model, ~3 MB per shard
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MALLOC_MMAP_THRESHOLD_": "65536"}  # no heap hoarding
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "base"), str(tmp_path / "delta"), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    extra = (measured["peak_kib"] - measured["start_kib"]) * 1024
    # two whole models in memory would be 2 x model_bytes; streaming holds a few shards at most
    print("delta peak extra bytes", extra, "shard", shard_bytes, "model", model_bytes)
    assert extra < 4 * shard_bytes + 16 * 2**20, (extra, shard_bytes, model_bytes)
    assert extra < 0.35 * model_bytes, (extra, model_bytes)
    assert len(list((tmp_path / "out").glob("model-*.safetensors"))) >= 20
