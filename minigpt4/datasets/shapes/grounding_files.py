"""Grounding files of the shapes world: RefCOCO/+/g (REFER pickles + instances.json), Visual Genome regions and
the three Flickr30k grounded sets. Each writer returns build_info with paths relative to the world folder."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from minigpt4.datasets.shapes.scene import SHAPES, Scene
from minigpt4.datasets.shapes.train_files import Images, box, train, write_images, write_json

# -- RefCOCO family --------------------------------------------------------------

REFER_SETS = {  # folder -> (splitBy, held-out splits, sentence templates)
    "refcoco": ("unc", ("val", "testA", "testB"), ("the {color} {shape}", "{color} {shape}")),
    "refcoco+": ("unc", ("val", "testA", "testB"), ("{color} {shape}", "the {color} one")),
    "refcocog": ("umd", ("val", "test"), ("the {color} {shape} in the picture", "a {shape} that is {color}")),
}


def refer_sentences(folder: str, obj: Any) -> list[str]:
    return [template.format(color=obj.color, shape=obj.shape) for template in REFER_SETS[folder][2]]


def heldout_split(scene_index: int, splits: tuple[str, ...]) -> str:
    return splits[scene_index % len(splits)]


def write_refcoco(root: Path, scenes: list[Scene]) -> dict[str, dict[str, Any]]:
    images = [
        {"id": s.image_id, "file_name": s.coco_file, "width": s.width, "height": s.height} for s in scenes
    ]
    annotations = [
        {
            "id": o.object_id,
            "image_id": s.image_id,
            "bbox": o.bbox,
            "area": o.bbox[2] * o.bbox[3],
            "category_id": 1 + list(SHAPES).index(o.shape),
            "iscrowd": 0,
        }
        for s in scenes
        for o in s.objects
    ]
    categories = [{"id": 1 + i, "name": name} for i, name in enumerate(list(SHAPES))]
    build_infos = {}
    for folder, (split_by, heldout_splits, _) in REFER_SETS.items():
        refs, sent_id = [], 0
        heldout_index = 0
        for scene in scenes:
            if scene.split == "train":
                split = "train"
            else:
                split = heldout_split(heldout_index, heldout_splits)
                heldout_index += 1
            for obj in scene.objects:
                sentences = []
                for text in refer_sentences(folder, obj):
                    sentences.append({"tokens": text.split(), "raw": text, "sent_id": sent_id, "sent": text})
                    sent_id += 1
                refs.append(
                    {
                        "ref_id": obj.object_id,
                        "ann_id": obj.object_id,
                        "image_id": scene.image_id,
                        "split": split,
                        "category_id": 1 + list(SHAPES).index(obj.shape),
                        "file_name": f"{scene.coco_file[:-4]}_{obj.object_id}.jpg",
                        "sent_ids": [s["sent_id"] for s in sentences],
                        "sentences": sentences,
                    }
                )
        out = root / "refcoco_annotations" / folder
        out.mkdir(parents=True, exist_ok=True)
        (out / f"refs({split_by}).p").write_bytes(pickle.dumps(refs, protocol=2))
        write_json(
            out / "instances.json", {"images": images, "annotations": annotations, "categories": categories}
        )
    for name, folder in (("refcoco", "refcoco"), ("refcocop", "refcoco+"), ("refcocog", "refcocog")):
        split_by = REFER_SETS[folder][0]
        for prefix in ("", "inv"):
            build_infos[prefix + name] = {
                "image_path": "coco/train",
                "ann_path": "refcoco_annotations",
                "dataset": prefix + folder,
                "splitBy": split_by,
            }
    return build_infos


def write_visual_genome(root: Path, scenes: list[Scene], images: Images) -> dict[str, Any]:
    chosen = train(scenes)
    folder = root / "visual_genome"
    image_data, regions = [], []
    region_id = 1
    for scene in chosen:
        subfolder = "VG_100K" if scene.image_id % 2 else "VG_100K_2"
        (folder / subfolder).mkdir(parents=True, exist_ok=True)
        (folder / subfolder / f"{scene.image_id}.jpg").write_bytes(images[scene.image_id])
        image_data.append(
            {
                "image_id": scene.image_id,
                "width": scene.width,
                "height": scene.height,
                "url": f"https://cs.stanford.edu/people/rak248/{subfolder}/{scene.image_id}.jpg",
                "coco_id": None,
                "flickr_id": None,
            }
        )
        entry = []
        for obj in scene.objects:
            x, y, w, h = obj.bbox
            entry.append(
                {
                    "region_id": region_id,
                    "image_id": scene.image_id,
                    "phrase": f"a {obj.phrase}",
                    "x": x,
                    "y": y,
                    "width": w,
                    "height": h,
                }
            )
            region_id += 1
        # the whole background: dropped when width * height >= 16384 (official filter, i.e. images >= 128 px)
        entry.append(
            {
                "region_id": region_id,
                "image_id": scene.image_id,
                "phrase": "the white background",
                "x": 0,
                "y": 0,
                "width": scene.width,
                "height": scene.height,
            }
        )
        region_id += 1
        regions.append({"id": scene.image_id, "regions": entry})
    write_json(folder / "image_data.json", image_data)
    write_json(folder / "region_descriptions.json", regions)
    return {"data_dir": "visual_genome"}


def grounded_caption(scene: Scene) -> str:
    return " and ".join(f"<p>a {obj.phrase}</p> {box(scene, obj)}" for obj in scene.objects)


def write_flickr(root: Path, scenes: list[Scene], images: Images) -> dict[str, dict[str, Any]]:
    chosen = train(scenes)
    write_images(root / "filtered_flickr" / "images", chosen, images, lambda s: f"{s.image_id}.jpg")
    grounded = [{"image_id": str(s.image_id), "grounded_caption": grounded_caption(s)} for s in chosen]
    caption_to_phrase = [
        {
            "image_id": str(s.image_id),
            "caption": s.sentence(),
            "output": " ".join(f"<p>{o.phrase}</p> {box(s, o)}" for o in s.objects),
        }
        for s in chosen
    ]
    phrase_to_object = [
        {"image_id": str(s.image_id), "phrase": o.phrase, "bbox": box(s, o)}
        for s in chosen
        for o in s.objects
    ]
    folder = root / "filtered_flickr"
    write_json(folder / "groundedcaption.json", grounded)
    write_json(folder / "captiontobbox.json", caption_to_phrase)
    write_json(folder / "phrasetobbox.json", phrase_to_object)
    images_rel = "filtered_flickr/images"
    return {
        "flickr_grounded_caption": {
            "image_path": images_rel,
            "ann_path": "filtered_flickr/groundedcaption.json",
        },
        "flickr_CaptionToPhrase": {
            "image_path": images_rel,
            "ann_path": "filtered_flickr/captiontobbox.json",
        },
        "flickr_ObjectToPhrase": {"image_path": images_rel, "ann_path": "filtered_flickr/phrasetobbox.json"},
    }
