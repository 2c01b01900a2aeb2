"""The fast-path run options compute what the official path computes (fp32, CPU).

`run.cache_image_features`: the same step losses with features served from the cache in epoch 2, and exact
resume; `run.length_bucket_batches`: the same per-sample losses as shuffled padded batches, a seeded,
resumable order; `run.compile_image_encoder`: the compiled ViT's outputs within tolerance of eager.
"""

from __future__ import annotations

import json
import logging
import random

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from minigpt4.common.errors import ConfigError
from minigpt4.datasets.formats.annotation_dataset import RecordDataset
from minigpt4.datasets.mixing import LengthBucketedSampler, build_train_loader, record_text_length
from minigpt4.models.prompting import IGNORE_INDEX
from minigpt4.processors.image import Blip2ImageTrainProcessor
from minigpt4.runners.runner import RunnerBase
from tests.models.conftest import build_tiny
from tests.runners.toy import ToyDataset, ToyModel, ToyTask, toy_cfg

ANSWERS = [
    "a red circle",
    "two blue squares on a white table near the window",
    "a star",
    "a small green triangle and a very large yellow rectangle beside it",
    "one dog",
    "three cats sleeping on a sofa",
    "a car",
    "an old wooden boat on a calm lake at sunset with mountains behind",
]


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


class CaptionDataset(Dataset):
    """Eight fixed (image, instruction, answer) samples of varied answer length; deterministic images."""

    def __init__(self, vis_processor=None) -> None:
        generator = torch.Generator().manual_seed(3)
        self.images = torch.randn(len(ANSWERS), 3, 112, 112, generator=generator)
        self.vis_processor = vis_processor

    def __len__(self) -> int:
        return len(ANSWERS)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index],
            "instruction_input": "<Img><ImageHere></Img> Describe the image.",
            "answer": ANSWERS[index],
        }

    def text_length(self, index: int) -> int:
        return len(ANSWERS[index])


def stage2_model():
    """Tiny MiniGPT-4 as stage 2 trains it: ViT, Q-Former and LLM frozen, llama_proj trained."""
    return build_tiny("vicuna0", freeze_vit=True, freeze_qformer=True, freeze_llm=True, prompt_path="")


def stage2_cfg(tmp_path, **run):
    cfg = toy_cfg(tmp_path, max_epoch=2, iters_per_epoch=4, init_lr=1e-3, **run)
    cfg.datasets_cfg.toy.batch_size = 2
    return cfg


def train_stage2(tmp_path, **run):
    torch.manual_seed(0)
    random.seed(0)
    model = stage2_model()
    runner = RunnerBase(stage2_cfg(tmp_path, **run), ToyTask(), model, {"toy": {"train": CaptionDataset()}})
    runner.train()
    log = tmp_path / "out" / "job" / "log.jsonl"
    return model, [json.loads(line)["loss"] for line in log.read_text().splitlines()]


# -- run.cache_image_features ---------------------------------------------------------------------


def test_cached_image_features_give_the_fresh_losses_in_both_epochs(tmp_path):
    official, fresh = train_stage2(tmp_path / "fresh")
    assert official.image_feature_cache is None  # off by default
    model, cached = train_stage2(tmp_path / "cached", cache_image_features=True)
    assert len(fresh) == len(cached) == 8
    assert cached == pytest.approx(fresh, abs=1e-6, rel=0)
    cache = model.image_feature_cache
    # epoch 1 sees every image once (4 steps x 2), epoch 2 is served from the cache
    assert len(cache) == 8 and cache.misses == 8 and cache.hits == 8
    assert next(iter(cache.features.values())).shape == (8, 64)  # (num_query_token, qformer hidden)


def test_cached_image_features_resume_exactly(tmp_path):
    reference, _ = train_stage2(tmp_path / "full", cache_image_features=True)
    train_stage2(tmp_path / "cut", cache_image_features=True, save_every_steps=2, max_iters=6)
    step_ckpt = tmp_path / "cut" / "out" / "job" / "checkpoint_step6.pth"
    torch.manual_seed(123)
    random.seed(123)
    model = stage2_model()
    runner = RunnerBase(
        stage2_cfg(tmp_path / "cut", cache_image_features=True, resume_ckpt_path=str(step_ckpt)),
        ToyTask(),
        model,
        {"toy": {"train": CaptionDataset()}},
    )
    runner.train()
    assert torch.equal(model.llama_proj.weight, reference.llama_proj.weight)
    assert torch.equal(model.llama_proj.bias, reference.llama_proj.bias)


def test_image_feature_cache_without_frozen_qformer_stores_patches():
    model = build_tiny("vicuna0", freeze_vit=True, freeze_qformer=False, freeze_llm=True, prompt_path="")
    model.train()
    samples = {**CaptionDataset()[0], "answer": [ANSWERS[0]]}
    samples["image"] = samples["image"][None]
    samples["instruction_input"] = [samples["instruction_input"]]

    def loss():
        torch.manual_seed(0)  # the trainable Q-Former runs its dropout
        return model(samples)["loss"]

    fresh = loss()
    model.enable_image_feature_cache()
    cached = [loss() for _ in range(2)]
    assert all(torch.equal(loss, fresh) for loss in cached)
    assert next(iter(model.image_feature_cache.features.values())).shape == (65, 64)  # (1 + P, W)
    cached[-1].backward()  # gradients still reach the trainable Q-Former through cached patches
    assert model.query_tokens.grad is not None


def test_cache_refuses_a_trainable_vit_and_a_random_processor(tmp_path):
    trainable_vit = build_tiny("vicuna0", freeze_vit=False, prompt_path="")
    with pytest.raises(ConfigError, match=r"needs a frozen image encoder.*model.freeze_vit=True"):
        RunnerBase(
            stage2_cfg(tmp_path, cache_image_features=True),
            ToyTask(),
            trainable_vit,
            {"toy": {"train": CaptionDataset()}},
        )
    random_crop = Blip2ImageTrainProcessor(image_size=112, random_resized_crop=True)
    with pytest.raises(ConfigError, match=r"toy \(vis_processor Blip2ImageTrainProcessor\) is random"):
        RunnerBase(
            stage2_cfg(tmp_path, cache_image_features=True),
            ToyTask(),
            stage2_model(),
            {"toy": {"train": CaptionDataset(random_crop)}},
        )


# -- run.length_bucket_batches ---------------------------------------------------------------------


def per_sample_losses(model, batch: dict) -> dict[str, float]:
    """answer -> token-mean CE over that sample's answer tokens (padding-independent)."""
    inputs_embeds, attention_mask, targets = model.build_llm_inputs(batch)
    logits = model.llama_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).logits
    shift_targets = targets[:, 1:]
    per_token = F.cross_entropy(logits[:, :-1].transpose(1, 2), shift_targets, reduction="none")  # (B, L-1)
    kept = shift_targets != IGNORE_INDEX
    losses = (per_token * kept).sum(1) / kept.sum(1)
    return dict(zip(batch["answer"], losses.tolist()))


def loader_batches(length_bucket_batches: int, steps: int = 4) -> list[dict]:
    loader = build_train_loader(
        {"caps": CaptionDataset()}, {"caps": 2}, seed=5, length_bucket_batches=length_bucket_batches
    )
    return [next(loader) for _ in range(steps)]


def test_bucketed_batches_give_the_padded_per_sample_losses():
    torch.manual_seed(0)
    logging.getLogger("minigpt4").setLevel(logging.ERROR)
    model = stage2_model().eval()
    padded, bucketed = loader_batches(0), loader_batches(4)
    with torch.no_grad():
        padded_losses = {k: v for batch in padded for k, v in per_sample_losses(model, batch).items()}
        bucketed_losses = {k: v for batch in bucketed for k, v in per_sample_losses(model, batch).items()}
    assert set(padded_losses) == set(bucketed_losses) == set(ANSWERS)  # one epoch, every sample once
    for answer in ANSWERS:
        assert bucketed_losses[answer] == pytest.approx(padded_losses[answer], abs=1e-6, rel=0), answer

    def padding(batches):  # answer characters of padding: sum over batches of B * longest - total
        return sum(
            len(b["answer"]) * max(map(len, b["answer"])) - sum(map(len, b["answer"])) for b in batches
        )

    assert padding(bucketed) < padding(padded)


def sampler(epoch: int = 0, seed: int = 11, window_batches: int = 3) -> LengthBucketedSampler:
    lengths = [(index * 7919) % 50 for index in range(40)]
    bucketed = LengthBucketedSampler(
        list(range(40)),
        num_replicas=1,
        rank=0,
        seed=seed,
        lengths=lengths,
        batch_size=4,
        window_batches=window_batches,
    )
    bucketed.set_epoch(epoch)
    return bucketed


def test_bucketed_sampler_order_is_seeded_complete_and_resumable():
    order = list(sampler())
    assert order == list(sampler())  # deterministic under the seed
    assert order != list(sampler(seed=12)) and order != list(sampler(epoch=1))
    assert sorted(order) == list(range(40))  # every index once per epoch
    lengths = sampler().lengths
    batches = [order[start : start + 4] for start in range(0, 40, 4)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    plain = list(range(40))  # an unsorted order of the same lengths spreads far more
    plain_spread = sum(
        max(lengths[i] for i in plain[s : s + 4]) - min(lengths[i] for i in plain[s : s + 4])
        for s in range(0, 40, 4)
    )
    assert spread < plain_spread / 2
    resumed = sampler()
    resumed.skip = 3 * 4  # what IterLoader.load_state_dict sets after 3 batches
    assert list(resumed) == order[12:]


class VariedToy(ToyDataset):
    def text_length(self, index: int) -> int:
        return (index * 5) % 11


def train_toy(path, **run) -> ToyModel:
    torch.manual_seed(0)
    model = ToyModel()
    RunnerBase(
        toy_cfg(path, length_bucket_batches=2, **run), ToyTask(), model, {"toy": {"train": VariedToy()}}
    ).train()
    return model


def test_bucketed_runner_resumes_mid_epoch_exactly(tmp_path):
    reference = train_toy(tmp_path / "full").llama_proj.weight
    train_toy(tmp_path / "cut", save_every_steps=2, max_iters=4)
    step_ckpt = tmp_path / "cut" / "out" / "job" / "checkpoint_step4.pth"
    torch.manual_seed(123)  # a resumed process starts from different RNG state
    resumed = train_toy(tmp_path / "cut", resume_ckpt_path=str(step_ckpt)).llama_proj.weight
    assert torch.equal(resumed, reference)


def test_record_text_length_counts_text_not_identity():
    record = {"image_id": "000123", "caption": "a cat", "conversations": [{"from": "human", "value": "hi"}]}
    assert record_text_length(record) == len("a cat") + len("human") + len("hi")


def test_bucketing_a_dataset_without_lengths_is_a_clear_error():
    class Opaque(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return {"answer": "x"}

    with pytest.raises(ConfigError, match=r"'opaque' \(Opaque\) has no annotation records"):
        build_train_loader({"opaque": Opaque()}, {"opaque": 2}, length_bucket_batches=2)


# -- run.compile_image_encoder ---------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_image_encoder_matches_eager(tmp_path):
    """Inductor on CPU (needs a C++ compiler; about 45 s of compilation on a shared 2-core machine)."""
    model = stage2_model()
    images = CaptionDataset().images[:2]
    keys = set(model.state_dict())
    with torch.no_grad():
        eager = model.visual_encoder(images)
        RunnerBase(
            stage2_cfg(tmp_path, compile_image_encoder=True, max_iters=0),
            ToyTask(),
            model,
            {"toy": {"train": CaptionDataset()}},
        )
        compiled = model.visual_encoder(images)
    assert set(model.state_dict()) == keys  # compiled in place: checkpoints keep their keys
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)


# -- run.cache_processed_images --------------------------------------------------------------------


class CountingImages(RecordDataset):
    """Records are image file names; counts how often a file is opened and decoded."""

    def __init__(self, folder, names, vis_processor) -> None:
        super().__init__(vis_processor, None, folder, names, name="counting")
        self.opened = 0

    def open_image(self, relative):
        self.opened += 1
        return super().open_image(relative)

    def sample(self, record):
        image, size = self.load_image(record)
        return {"image": image, "size": size}


def counting_images(tmp_path, processor) -> CountingImages:
    from PIL import Image

    names = []
    for index, colour in enumerate(["red", "blue", "green"]):
        Image.new("RGB", (40 + index, 30), colour).save(tmp_path / f"{index}.png")
        names.append(f"{index}.png")
    return CountingImages(tmp_path, names, processor)


def test_processed_images_are_kept_after_their_first_load_and_equal_fresh_ones(tmp_path):
    from torch.utils.data import ConcatDataset

    from minigpt4.processors.image import Blip2ImageEvalProcessor
    from minigpt4.runners.fast_paths import apply_fast_paths

    fresh = counting_images(tmp_path, Blip2ImageEvalProcessor(image_size=32))
    cached = counting_images(tmp_path, Blip2ImageEvalProcessor(image_size=32))
    apply_fast_paths(torch.nn.Module(), {"cache_processed_images": True}, {"mix": ConcatDataset([cached])})
    for _ in range(2):  # two epochs
        for index in range(3):
            a, b = fresh[index], cached[index]
            assert torch.equal(a["image"], b["image"]) and a["size"] == b["size"] == (40 + index, 30)
    assert (fresh.opened, cached.opened) == (6, 3)


def test_processed_image_cache_refuses_a_random_processor(tmp_path):
    from torch.utils.data import ConcatDataset

    from minigpt4.runners.fast_paths import apply_fast_paths

    dataset = counting_images(tmp_path, Blip2ImageTrainProcessor(image_size=32, random_resized_crop=True))
    for given in (dataset, ConcatDataset([dataset])):
        with pytest.raises(ConfigError, match=r"run.cache_processed_images: .*counting_set .*is random"):
            apply_fast_paths(torch.nn.Module(), {"cache_processed_images": True}, {"counting_set": given})
    assert dataset.processed_images is None
