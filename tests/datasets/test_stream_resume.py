"""A seeded webdataset mix (two streams, LAION/CC-SBU style) stopped after k batches and restored from its
state_dict continues with exactly the batches an uninterrupted loader yields, with and without workers."""

from __future__ import annotations

import io

import pytest
import torch
import webdataset as wds
from PIL import Image

from minigpt4.common.errors import ConfigError
from minigpt4.datasets.formats.webdataset_stream import WebdatasetCaptionStream
from minigpt4.datasets.mixing import build_train_loader
from minigpt4.processors.image import Blip2ImageTrainProcessor
from minigpt4.processors.text import BlipCaptionProcessor


def write_shards(folder, prefix: str, shards: int = 3, per_shard: int = 7) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        with wds.TarWriter(str(folder / f"{shard:05d}.tar")) as writer:
            for index in range(per_shard):
                color = (40 * shard, 30 * index, 200)
                buffer = io.BytesIO()
                Image.new("RGB", (24, 20), color).save(buffer, format="JPEG")
                writer.write(
                    {
                        "__key__": f"{prefix}{shard}_{index}",
                        "jpg": buffer.getvalue(),
                        "json": {"caption": f"{prefix} {shard} {index}"},
                    }
                )
    return str(folder / f"{{00000..{shards - 1:05d}}}.tar")


def make_loader(locations: dict[str, str], num_workers: int, seed=0):
    # random crops, so the per-sample augmentation seed is part of what must repeat
    processor = Blip2ImageTrainProcessor(16, random_resized_crop=True)
    datasets = {
        name: WebdatasetCaptionStream(
            processor, BlipCaptionProcessor(), location, name=name, shuffle_buffer=5, seed=seed + i
        ).inner_dataset
        for i, (name, location) in enumerate(locations.items())
    }
    return build_train_loader(
        datasets, {"laion": 3, "cc_sbu": 2}, {"laion": 3.0, "cc_sbu": 1.0}, num_workers=num_workers, seed=5
    )


def draw(loader, count: int) -> list[tuple[list[str], torch.Tensor]]:
    batches = []
    for _ in range(count):
        batch = next(loader)
        assert not any(key.startswith("_stream") for key in batch)
        batches.append((batch["answer"], batch["image"]))
    return batches


@pytest.fixture
def locations(tmp_path):
    return {
        "laion": write_shards(tmp_path / "laion", "laion"),
        "cc_sbu": write_shards(tmp_path / "cc_sbu", "sbu", shards=2, per_shard=5),
    }


@pytest.mark.parametrize("num_workers", [0, 2])
def test_seeded_streams_resume_exactly(locations, num_workers):
    reference = draw(make_loader(locations, num_workers), 14)

    first = make_loader(locations, num_workers)
    head = draw(first, 6)  # with workers, more batches than these are already prefetched
    state = first.state_dict()
    resumed = make_loader(locations, num_workers)
    resumed.load_state_dict(state)
    tail = draw(resumed, 8)

    for (ref_answer, ref_image), (answer, image) in zip(reference, head + tail, strict=True):
        assert answer == ref_answer
        assert torch.equal(image, ref_image)


def test_resume_with_other_worker_count_is_refused(locations):
    first = make_loader(locations, 0)
    draw(first, 3)
    with pytest.raises(ConfigError, match=r"run\.num_workers=0"):
        make_loader(locations, 2).load_state_dict(first.state_dict())


def test_unseeded_streams_keep_the_official_pipeline(locations):
    stream = WebdatasetCaptionStream(None, None, locations["laion"], seed=None)
    assert isinstance(stream.inner_dataset, wds.DataPipeline)
