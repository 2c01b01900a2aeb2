"""Each promised data error: a clear message naming the path or record and the expected layout."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
from datasets_helpers import builder_cfg
from omegaconf import OmegaConf

from minigpt4.common.errors import ConfigError, DataError, RegistryError
from minigpt4.common.registry import registry
from minigpt4.datasets.builders import build_dataset
from minigpt4.datasets.files import load_plain_pickle


def read_json(path):
    return json.loads(Path(path).read_text())


def build(name, cfg):
    return registry.get_builder_class(name)(cfg).build_datasets()["train"]


def test_unknown_builder_name_lists_known_names_and_closest():
    with pytest.raises(RegistryError, match=r"unknown builder 'refcoco_plus'.*did you mean.*registered: "):
        registry.get_builder_class("refcoco_plus")


def test_missing_annotation_file_names_path_and_layout(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "llava_detail")
    cfg.build_info.ann_path = str(tmp_path / "nope.json")
    with pytest.raises(
        DataError, match=r"expected a file at .*nope\.json, found nothing\. Expected layout: .*conversations"
    ):
        build("llava_detail", cfg)


def test_wrong_image_folder_names_path(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "coco_caption")
    cfg.build_info.images.storage = str(tmp_path)
    with pytest.raises(
        DataError, match=r"expected a folder at .*/train, found nothing.*<images\.storage>/train"
    ):
        build("coco_caption", cfg)


def test_official_placeholder_path_is_reported():
    with pytest.raises(
        DataError, match=r"build_info\.ann_path is still the official placeholder '/path/to/llava"
    ):
        build_dataset("llava_detail", None)  # the default YAML holds /path/to/... placeholders


def test_missing_build_info_key_names_the_key(world_cfg):
    cfg = builder_cfg(world_cfg, "refcoco")
    del cfg.build_info["splitBy"]
    with pytest.raises(ConfigError, match=r"datasets\.refcoco\.build_info\.splitBy is missing"):
        build("refcoco", cfg)


def test_malformed_record_names_file_index_and_missing_key(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "flickr_ObjectToPhrase")
    records = read_json(cfg.build_info.ann_path)
    del records[3]["bbox"]
    bad = tmp_path / "phrasetobbox.json"
    bad.write_text(json.dumps(records))
    cfg.build_info.ann_path = str(bad)
    with pytest.raises(
        DataError, match=r"record 3 of .*phrasetobbox\.json lacks 'bbox' \(has image_id, phrase\)"
    ):
        build("flickr_ObjectToPhrase", cfg)


def test_not_json_is_reported(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "gqa")
    bad = tmp_path / "q.json"
    bad.write_text("{not json")
    cfg.build_info.annotations.train.storage = [str(bad)]
    with pytest.raises(DataError, match=r"q\.json is not valid JSON"):
        build("gqa", cfg)


def test_missing_image_at_getitem_names_the_path(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "flickr_grounded_caption")
    images = tmp_path / "images"
    shutil.copytree(cfg.build_info.image_path, images)
    first = read_json(cfg.build_info.ann_path)[0]["image_id"]
    os.remove(images / f"{first}.jpg")
    cfg.build_info.image_path = str(images)
    dataset = build("flickr_grounded_caption", cfg)
    with pytest.raises(
        DataError, match=rf"image not found at .*{first}\.jpg\. Expected layout: .*<image_id>\.jpg"
    ):
        dataset[0]


def test_coco_vqa_missing_images_are_dropped_counted_and_logged(world_cfg, tmp_path, caplog):
    cfg = builder_cfg(world_cfg, "coco_vqa")
    storage = tmp_path / "coco"
    shutil.copytree(cfg.build_info.images.storage + "/train", storage / "train")
    records = read_json(cfg.build_info.annotations.train.storage[0])
    victim = records[0]["image"].split("/")[-1]
    os.remove(storage / "train" / victim)
    expected = sum(
        record["image"].endswith(victim)
        for annotations in cfg.build_info.annotations.train.storage
        for record in read_json(annotations)
    )
    cfg.build_info.images.storage = str(storage)
    with caplog.at_level(logging.WARNING):
        dataset = build("coco_vqa", cfg)
    assert dataset.dropped_missing_images == expected > 0
    assert f"dropped {expected} of" in caplog.text and victim in caplog.text


def test_restricted_unpickler_refuses_a_malicious_pickle(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "payload": Exploit()}]))
    with pytest.raises(DataError, match=r"refusing to load global (posix|os)\.system"):
        load_plain_pickle(path, "refcoco", "refs(unc).p")
    assert not (tmp_path / "pwned").exists()


def test_restricted_unpickler_reads_plain_containers(tmp_path):
    data = [{"ref_id": 1, "sentences": [{"raw": "x"}], "box": (1.5, 2), "tags": {"a"}, "none": None}]
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"p{protocol}.p"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert load_plain_pickle(path, "refcoco", "refs") == data


def test_refcoco_with_a_malicious_refs_file_fails_at_build(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "refcoco")
    folder = tmp_path / "refcoco"
    folder.mkdir()
    shutil.copy(os.path.join(cfg.build_info.ann_path, "refcoco", "instances.json"), folder)
    (folder / "refs(unc).p").write_bytes(pickle.dumps(OmegaConf))  # any global is refused
    cfg.build_info.ann_path = str(tmp_path)
    with pytest.raises(DataError, match=r"refusing to load global omegaconf"):
        build("refcoco", cfg)


def test_refcoco_unknown_dataset_name(world_cfg):
    cfg = builder_cfg(world_cfg, "refcoco")
    cfg.build_info.dataset = "refclef"
    with pytest.raises(DataError, match=r"'refclef' is not one of refcoco, refcoco\+, refcocog"):
        build("refcoco", cfg)


def test_missing_webdataset_shards_are_reported(world_cfg, tmp_path):
    cfg = builder_cfg(world_cfg, "laion")
    cfg.build_info.storage = str(tmp_path / "{00000..00003}.tar")
    with pytest.raises(DataError, match=r"4 of 4 shards .* are missing, e\.g\. .*00000\.tar"):
        build("laion", cfg)
