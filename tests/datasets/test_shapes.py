"""The shapes world: deterministic, configurable, correct by construction, in every evaluation format too."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from datasets_helpers import vqa_answer
from omegaconf import OmegaConf
from PIL import Image

from minigpt4.datasets.box_text import box_string
from minigpt4.datasets.shapes import generate_world, load_truth
from minigpt4.datasets.shapes.world import shapes_default_yamls

REPO = Path(__file__).resolve().parents[2]


def digest(root: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "datasets.yaml"):
        hasher.update(str(path.relative_to(root)).encode())
        hasher.update(path.read_bytes())
    return hasher.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    small = {"num_train": 6, "num_heldout": 6}
    a = generate_world(tmp_path / "a", seed=3, **small)
    b = generate_world(tmp_path / "b", seed=3, **small)
    c = generate_world(tmp_path / "c", seed=4, **small)
    assert digest(a.root) == digest(b.root) != digest(c.root)


def test_regenerating_a_smaller_world_leaves_no_file_of_the_larger(tmp_path):
    generate_world(tmp_path / "w", num_train=8, num_heldout=8)
    (tmp_path / "w" / "notes.txt").write_text("kept only if the folder is not a world")
    smaller = generate_world(tmp_path / "w", num_train=4, num_heldout=6)
    fresh = generate_world(tmp_path / "fresh", num_train=4, num_heldout=6)
    assert digest(smaller.root) == digest(fresh.root)
    assert len(list((smaller.root / "coco" / "train").iterdir())) == 10


def test_truth_is_consistent(world):
    truth = load_truth(world.root)
    images = truth["images"]
    assert (
        sum(i["split"] == "train" for i in images) == 24
        and sum(i["split"] == "heldout" for i in images) == 12
    )
    object_ids = [o["object_id"] for i in images for o in i["objects"]]
    assert len(object_ids) == len(set(object_ids))
    for image in images:
        objects = image["objects"]
        assert 1 <= len(objects) <= 3
        assert len({o["color"] for o in objects}) == len({o["shape"] for o in objects}) == len(objects)
        assert [o["bbox"][0] + o["bbox"][2] / 2 for o in objects] == sorted(
            o["bbox"][0] + o["bbox"][2] / 2 for o in objects
        )
        picture = Image.open(world.root / "coco" / "train" / image["file"]).convert("RGB")
        for obj in objects:
            x, y, w, h = obj["bbox"]
            assert x >= 0 and x + w <= image["width"] and y >= 0 and y + h <= image["height"]
            red, green, blue = picture.getpixel((x + w // 2, y + int(h * 0.6)))
            expected = {
                "red": (230, 25, 25),
                "green": (30, 170, 40),
                "blue": (30, 70, 230),
                "yellow": (240, 200, 0),
            }
            assert max(abs(a - b) for a, b in zip((red, green, blue), expected[obj["color"]])) < 40


def test_configurable_size_resolution_and_objects(tmp_path):
    info = generate_world(tmp_path, image_size=64, num_train=5, num_heldout=6, min_objects=1, max_objects=1)
    assert len(info.scenes) == 11 and all(len(s.objects) == 1 for s in info.scenes)
    assert Image.open(tmp_path / "coco" / "train" / info.scenes[0].coco_file).size == (64, 64)
    with pytest.raises(ValueError, match="objects per image"):
        generate_world(tmp_path / "x", max_objects=4)


def test_refcoco_eval_files_match_held_out_truth(world):
    truth = {i["image_id"]: i for i in load_truth(world.root)["images"]}
    heldout_objects = sum(len(i["objects"]) for i in truth.values() if i["split"] == "heldout")
    for folder, splits in (("refcoco", ("val", "testA", "testB")), ("refcocog", ("val", "test"))):
        rows = [
            r
            for s in splits
            for r in json.loads((world.root / "eval" / folder / f"{folder}_{s}.json").read_text())
        ]
        assert len(rows) == 2 * heldout_objects  # two sentences per object
        for row in rows:
            image = truth[int(row["img_id"][15:27])]
            assert (
                image["split"] == "heldout"
                and (world.root / "coco" / "train" / f"{row['img_id'][:27]}.jpg").is_file()
            )
            obj = next(o for o in image["objects"] if o["object_id"] == int(row["img_id"][28:]))
            assert (
                row["bbox"] == obj["bbox"] and obj["color"] in row["sents"] and obj["shape"] in row["sents"]
            )
    refs = pickle.loads((world.root / "refcoco_annotations" / "refcoco" / "refs(unc).p").read_bytes())
    assert {r["split"] for r in refs} == {"train", "val", "testA", "testB"}


def test_pair_scenes_have_two_objects_apart_horizontally_and_their_own_ids(world):
    truth = load_truth(world.root)
    pairs = truth["pair_images"]
    assert [i["split"] for i in pairs] == ["train"] * 12 + ["heldout"] * 12  # num_train // 2, num_heldout
    main_ids = {i["image_id"] for i in truth["images"]}
    assert min(i["image_id"] for i in pairs) > max(main_ids)
    main_objects = {o["object_id"] for i in truth["images"] for o in i["objects"]}
    assert not main_objects & {o["object_id"] for i in pairs for o in i["objects"]}
    for image in pairs:
        left, right = image["objects"]
        assert left["bbox"][0] + left["bbox"][2] <= right["bbox"][0]
        assert left["color"] != right["color"] and left["shape"] != right["shape"]
    assert (world.root / "vsr" / "images" / f"{pairs[0]['image_id']:012d}.jpg").is_file()


def test_two_object_captions_name_the_training_pairs_left_to_right(world):
    folder = world.root / "two_object_captions"
    pairs = {i["image_id"]: i for i in load_truth(world.root)["pair_images"] if i["split"] == "train"}
    annotations = json.loads((folder / "filter_cap.json").read_text())["annotations"]
    assert sorted(int(a["image_id"]) for a in annotations) == sorted(pairs)
    for annotation in annotations:
        left, right = pairs[int(annotation["image_id"])]["objects"]
        expected = f"The image shows a {left['phrase']} and a {right['phrase']} on a white background."
        assert annotation["caption"] == expected
        assert (folder / "image" / f"{annotation['image_id']}.jpg").is_file()


def test_gqa_training_file_asks_where_things_are_in_the_pair_scenes(world):
    truth = load_truth(world.root)
    by_id = {image["image_id"]: image for image in truth["pair_images"] if image["split"] == "train"}
    questions = json.loads((world.root / "gqa" / "train_balanced_questions.json").read_text())
    sides = [q for q in questions if int(q["image"].removesuffix(".jpg")) in by_id]
    assert len(sides) == 4 * len(by_id)
    for question in sides:
        image = by_id[int(question["image"].removesuffix(".jpg"))]
        assert (world.root / "gqa" / "train" / question["image"]).is_file()
        assert question["answer"] == vqa_answer(question["question"].lower(), image)


def test_vqa_eval_files(world):
    root = world.root / "eval"
    truth = {i["image_id"]: i for i in load_truth(world.root)["images"]}
    questions = json.loads((root / "okvqa" / "OpenEnded_mscoco_val2014_questions_clean.json").read_text())
    annotations = json.loads((root / "okvqa" / "mscoco_val2014_annotations_clean.json").read_text())
    assert {q["question_id"] for q in questions["questions"]} == {
        a["question_id"] for a in annotations["annotations"]
    }
    assert all(len(a["answers"]) == 10 for a in annotations["annotations"])
    for q in json.loads((root / "okvqa" / "okvqa_test_split.json").read_text()):
        assert (root / "okvqa" / "images" / f"{q['image_id']:012d}.jpg").is_file()
    for row in json.loads((root / "iconqa" / "choose_text_val.json").read_text()):
        image = truth[int(row["image_id"])]
        color = row["question"].split()[4]
        assert row["choices"][row["answer"]] == next(
            o["shape"] for o in image["objects"] if o["color"] == color
        )
        assert (root / "iconqa" / "images" / row["image_id"] / "image.png").is_file()
    vizwiz = json.loads((root / "vizwiz" / "val.json").read_text())
    assert {"unanswerable"} < {r["answers"][0]["answer"] for r in vizwiz}
    pairs = {i["image_id"]: i for i in load_truth(world.root)["pair_images"]}
    for line in (root / "vsr" / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        image = pairs[int(row["image"][:-4])]
        assert image["split"] == "heldout" and len(image["objects"]) == 2
        subj = next(o for o in image["objects"] if o["phrase"] == row["subj"])
        obj = next(o for o in image["objects"] if o["phrase"] == row["obj"])
        assert (subj["bbox"][0] + subj["bbox"][2] <= obj["bbox"][0]) == bool(row["label"])
    hm = [json.loads(line) for line in (root / "hm" / "dev.jsonl").read_text().splitlines()]
    assert {r["label"] for r in hm} == {0, 1} and all((root / "hm" / r["img"]).is_file() for r in hm)
    gqa = json.loads((root / "gqa" / "testdev_balanced_questions.json").read_text())
    assert all((root / "gqa" / "images" / r["image"]).is_file() for r in gqa)


def test_datasets_yaml_has_every_builder_and_eval_entry(world):
    cfg = OmegaConf.load(world.datasets_yaml)
    assert len(cfg.datasets) == 31  # 25 official builders, vsr, hateful_memes, vizwiz, cc3m, vist, mmdialog
    expected = [
        "refcoco",
        "refcoco+",
        "refcocog",
        "okvqa",
        "vizwiz",
        "iconvqa",
        "gqa",
        "vsr",
        "hm",
        "vqav2",
        "coco_caption",
    ]
    assert set(cfg.evaluation_datasets) == set(expected)
    assert cfg.datasets.unnatural_instruction.data_type == "text"
    assert Path(cfg.evaluation_datasets.refcoco.img_path).is_dir()


def test_flickr_boxes_use_the_official_formula(world):
    truth = {i["image_id"]: i for i in load_truth(world.root)["images"]}
    for row in json.loads((world.root / "filtered_flickr" / "phrasetobbox.json").read_text()):
        image = truth[int(row["image_id"])]
        obj = next(o for o in image["objects"] if o["phrase"] == row["phrase"])
        x, y, w, h = obj["bbox"]
        numbers = [
            int(x / image["width"] * 100),
            int(y / image["height"] * 100),
            int((x + w) / image["width"] * 100),
            int((y + h) / image["height"] * 100),
        ]
        assert row["bbox"] == "{{<{}><{}><{}><{}>}}".format(*numbers) == box_string(obj["bbox"], 112, 112)


def test_type_shapes_yamls_are_generated_from_the_world():
    for name, text in shapes_default_yamls().items():
        path = REPO / "minigpt4" / "configs" / "datasets" / name / "shapes.yaml"
        assert path.read_text() == text, f"{path} is stale: regenerate with shapes_default_yamls()"


def test_type_shapes_config_builds_through_the_env_variable(world, monkeypatch, tmp_path):
    from minigpt4.common.config import merge_config
    from minigpt4.common.registry import registry

    monkeypatch.setenv("SHAPES_WORLD", str(world.root))
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "model: {arch: minigpt4, model_type: pretrain_vicuna0}\nrun: {task: image_text_pretrain}\n"
        "datasets:\n  refcocog: {type: shapes, batch_size: 2, vis_processor: {train: {name: "
        "blip2_image_train, image_size: 16}}, text_processor: {train: {name: blip_caption}}}\n"
    )
    cfg = merge_config(path)
    dataset = registry.get_builder_class("refcocog")(cfg.datasets.refcocog).build_datasets()["train"]
    assert len(dataset) > 0 and dataset[0]["image"].shape == (3, 16, 16)


def test_cli_small_default_takes_seconds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minigpt4.datasets.shapes", "--out", str(tmp_path), "--size", "small"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "600 images" in result.stdout
    truth = load_truth(tmp_path)
    assert len(truth["images"]) == 600 and truth["config"]["image_size"] == 112


def test_every_benchmark_reader_loads_the_world(world_cfg):
    from minigpt4.evaluation.benchmarks import build_benchmark

    for name, block in world_cfg.evaluation_datasets.items():
        benchmark = build_benchmark(name, OmegaConf.to_container(block))
        for split in benchmark.splits:
            samples = benchmark.load(split)
            assert samples, (name, split)
            assert all(sample.image_path.is_file() for sample in samples), (name, split)


def perfect_answer(name: str, target) -> str:
    """What a perfect model answers, from each benchmark's ground truth."""
    if name.startswith("refcoco"):
        return box_string(target["bbox"], target["width"], target["height"])
    if name in ("okvqa", "vqav2"):
        return target["multiple_choice_answer"]
    if name == "vizwiz":
        return target.split("_")[0] if isinstance(target, str) else target[0]
    if name == "hm":
        return "yes" if target == 1 else "no"
    return str(target)  # gqa answer, vsr 'true'/'false'


def test_perfect_answers_score_100_on_the_world(world_cfg):
    from minigpt4.evaluation.benchmarks import build_benchmark

    for name in ("refcoco", "refcoco+", "refcocog", "okvqa", "vqav2", "gqa", "vizwiz", "vsr", "hm"):
        benchmark = build_benchmark(name, OmegaConf.to_container(world_cfg.evaluation_datasets[name]))
        split = benchmark.splits[0]
        samples = benchmark.load(split)
        records = [benchmark.record(s, perfect_answer(name, s.target)) for s in samples]
        assert benchmark.score(samples, records).score == pytest.approx(100.0), name
