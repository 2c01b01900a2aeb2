"""Corrupt webdataset samples are skipped, counted and logged; the stream never crashes."""

from __future__ import annotations

import io
import itertools
import logging

import webdataset as wds
from PIL import Image

from minigpt4.datasets.formats.webdataset_stream import WebdatasetCaptionStream
from minigpt4.processors.image import Blip2ImageEvalProcessor
from minigpt4.processors.text import BlipCaptionProcessor


def jpeg(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_shard(path, good: int) -> None:
    with wds.TarWriter(str(path)) as writer:
        for index in range(good):
            writer.write(
                {
                    "__key__": f"good{index}",
                    "jpg": jpeg((200, 0, 0)),
                    "json": {"caption": f"Caption {index}!"},
                }
            )
        writer.write(
            {"__key__": "badjpg", "jpg": b"\xff\xd8 not a jpeg", "json": {"caption": "broken image"}}
        )
        writer.write({"__key__": "nojson", "jpg": jpeg((0, 0, 200))})
        writer.write({"__key__": "nocaption", "jpg": jpeg((0, 200, 0)), "json": {"text": "wrong key"}})


def test_corrupt_samples_are_skipped_counted_and_logged(tmp_path, caplog):
    write_shard(tmp_path / "00000.tar", good=4)
    stream = WebdatasetCaptionStream(
        Blip2ImageEvalProcessor(16),
        BlipCaptionProcessor(),
        str(tmp_path / "{00000..00000}.tar"),
        name="laion",
        shuffle_buffer=4,
        seed=0,
    )
    with caplog.at_level(logging.WARNING):
        samples = list(
            itertools.islice(iter(stream.inner_dataset), 40)
        )  # resampled: ~10 passes over the shard
    assert {sample["answer"] for sample in samples} <= {f"caption {i}" for i in range(4)}
    assert all(sample["image"].shape == (3, 16, 16) for sample in samples)
    # every pass over the shard skips the same three bad samples
    passes = len(samples) / 4
    assert 3 * (passes - 1) <= stream.skips.skipped <= 3 * (passes + 1)
    assert {"DecodingError", "KeyError"} <= set(
        stream.skips.by_error
    )  # bad jpeg; missing json member or caption
    assert sum(stream.skips.by_error.values()) == stream.skips.skipped
    assert stream.inner_dataset.skip_counter is stream.skips
    warnings = [r for r in caplog.records if "skipped a corrupt webdataset sample" in r.getMessage()]
    assert len(warnings) >= 10 and "laion" in warnings[0].getMessage()


def test_stream_through_a_dataloader_with_workers(tmp_path):
    from torch.utils.data import DataLoader

    from minigpt4.datasets.collate import collate_samples

    write_shard(tmp_path / "00000.tar", good=3)
    write_shard(tmp_path / "00001.tar", good=3)
    stream = WebdatasetCaptionStream(
        Blip2ImageEvalProcessor(16),
        BlipCaptionProcessor(),
        str(tmp_path / "{00000..00001}.tar"),
        shuffle_buffer=2,
    )
    loader = DataLoader(stream.inner_dataset, batch_size=4, num_workers=2, collate_fn=collate_samples)
    batches = list(itertools.islice(iter(loader), 3))
    assert all(batch["image"].shape == (4, 3, 16, 16) for batch in batches)
    assert all(len(batch["answer"]) == 4 for batch in batches)


def captions_of(location: str, seed, count: int = 30) -> list[str]:
    stream = WebdatasetCaptionStream(
        Blip2ImageEvalProcessor(16), BlipCaptionProcessor(), location, shuffle_buffer=8, seed=seed
    )
    return [sample["answer"] for sample in itertools.islice(iter(stream.inner_dataset), count)]


def test_a_seeded_stream_repeats_itself(tmp_path):
    for shard in ("00000", "00001"):
        write_shard(tmp_path / f"{shard}.tar", good=6)
    location = str(tmp_path / "{00000..00001}.tar")
    assert captions_of(location, seed=0) == captions_of(location, seed=0) != captions_of(location, seed=1)
