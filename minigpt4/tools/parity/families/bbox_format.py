"""Parity family `bbox_format`: box strings, instructions and answers of our REC, inverse-REC, Visual Genome and
Flickr detection datasets, run end to end on files written in the official layouts from the fixture cases."""

from __future__ import annotations

import json
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from minigpt4.datasets import instructions
from minigpt4.datasets.formats import image_ann, rec, visual_genome
from minigpt4.processors.text import BlipCaptionProcessor
from minigpt4.tools.parity.report import FamilyReport


def _stub_vis(image: Image.Image) -> torch.Tensor:
    return torch.zeros(1)


def _save_image(path: Path, size: list[int] | tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", tuple(size)).save(path, format="JPEG", quality=50)


def _with_pool(dataset_cls: type, template: str) -> type:
    return type(dataset_cls.__name__, (dataset_cls,), {"POOL": (template,)})


def _check_rec(report: FamilyReport, data: dict[str, Any], tmp: Path, text: BlipCaptionProcessor) -> None:
    cases = data["refcoco_cases"]
    report.exact("refcoco instruction pool", data["refcoco_instruction_pool"], list(instructions.REFER_POOL))
    report.exact(
        "invrefcoco instruction pool", data["invrefcoco_instruction_pool"], list(instructions.IDENTIFY_POOL)
    )
    folder = tmp / "refer" / "refcoco"
    folder.mkdir(parents=True)
    refs, annotations = [], []
    for index, case in enumerate(cases):
        image_id = index + 1
        _save_image(tmp / "images" / f"COCO_train2014_{image_id:012d}.jpg", case["image_size_wh"])
        refs.append(
            {
                "ref_id": index,
                "ann_id": 1000 + index,
                "image_id": image_id,
                "split": "train",
                "sentences": [{"raw": case["sentence_raw"]}],
            }
        )
        annotations.append({"id": 1000 + index, "image_id": image_id, "bbox": case["bbox_xywh_px"]})
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs))
    (folder / "instances.json").write_text(
        json.dumps({"images": [], "annotations": annotations, "categories": []})
    )
    for kind, base, key, answer_key in (
        ("refcoco", rec.ReferCOCODataset, "refcoco_instruction_by_template", "refcoco_answer"),
        ("invrefcoco", rec.InvReferCOCODataset, "invrefcoco_instruction_by_template", "invrefcoco_answer"),
    ):
        pool = base.POOL
        for template_index, template in enumerate(pool):
            dataset = _with_pool(base, template)(
                _stub_vis, text, tmp / "images", tmp / "refer", dataset=kind, splitBy="unc"
            )
            for index, case in enumerate(cases):
                what = f"{kind} case {index} template {template_index}"
                try:
                    sample = dataset[index]
                except Exception as exc:  # a crash is a failed case
                    report.error(what, exc)
                    continue
                report.exact(f"{what}: instruction", case[key][template_index], sample["instruction_input"])
                if kind == "refcoco" and template_index == 0:
                    data_item = dataset.preprocess(dataset.records[index])
                    report.exact(f"{what}: bbox_string", case["bbox_string"], data_item["bbox"])
                    report.exact(
                        f"{what}: refer_sentence_processed",
                        case["refer_sentence_processed"],
                        data_item["refer_sentence"],
                    )
                if template_index == 0:
                    report.exact(f"{what}: answer", case[answer_key], sample["answer"])


def _check_vg(report: FamilyReport, data: dict[str, Any], tmp: Path, text: BlipCaptionProcessor) -> None:
    report.exact("vg instruction pool", data["vg_instruction_pool"], list(instructions.REFER_POOL))
    folder = tmp / "vg"
    image_data, regions = [], []
    for index, region in enumerate(data["vg_regions_all"]):
        _save_image(folder / "VG_100K" / f"{index}.jpg", region["image_wh"])
        image_data.append({"image_id": index, "url": f"https://x/VG_100K/{index}.jpg"})
        regions.append(
            {"id": index, "regions": [{key: region[key] for key in ("x", "y", "width", "height", "phrase")}]}
        )
    (folder / "image_data.json").write_text(json.dumps(image_data))
    (folder / "region_descriptions.json").write_text(json.dumps(regions))
    datasets: dict[int, Any] = {}

    def with_template(k: int) -> Any:  # a dataset whose pool is our template k (the fixture pinned pool[k])
        if k not in datasets:
            pool_cls = _with_pool(visual_genome.ReferVisualGenomeDataset, instructions.REFER_POOL[k])
            datasets[k] = pool_cls(_stub_vis, text, folder)
        return datasets[k]

    report.exact("vg kept regions", len(data["vg_cases"]), len(with_template(0)))
    for index, case in enumerate(data["vg_cases"][: len(with_template(0))]):
        kept = with_template(0).records[index]
        report.exact(
            f"vg case {index}: region",
            [case["region"][k] for k in ("x", "y", "width", "height", "phrase")],
            list(kept[2:]),
        )
        for key, expected in case.items():
            match = re.fullmatch(r"instruction_with_template_(\d+)", key)
            if not match:
                continue
            try:
                sample = with_template(int(match.group(1)))[index]
            except Exception as exc:
                report.error(f"vg case {index} {key}", exc)
                continue
            report.exact(f"vg case {index}: {key}", expected, sample["instruction_input"])
            report.exact(f"vg case {index}: answer", case["answer"], sample["answer"])
            report.exact(f"vg case {index}: bbox_string", case["bbox_string"], sample["answer"])
            report.exact(
                f"vg case {index}: refer_sentence_processed", case["refer_sentence_processed"], text(kept[-1])
            )


def _check_flickr(report: FamilyReport, data: dict[str, Any], tmp: Path, text: BlipCaptionProcessor) -> None:
    folder = tmp / "flickr"
    anns = [case["ann"] for case in data["flickr_cases"]]
    for ann in anns:
        _save_image(folder / "images" / f"{ann['image_id']}.jpg", (8, 8))
    (folder / "ann.json").write_text(json.dumps(anns))
    for key, dataset_cls in (
        ("phrase_to_object", image_ann.PhraseToObjectDataset),
        ("caption_to_object", image_ann.CaptionToPhraseDataset),
    ):
        dataset = dataset_cls(_stub_vis, text, folder / "images", folder / "ann.json")
        for index, case in enumerate(data["flickr_cases"]):
            try:
                sample = dataset[index]
            except Exception as exc:
                report.error(f"flickr {key} case {index}", exc)
                continue
            report.exact(
                f"flickr {key} case {index}: instruction",
                case[key]["instruction_input"],
                sample["instruction_input"],
            )
            report.exact(f"flickr {key} case {index}: answer", case[key]["answer"], sample["answer"])


def check(path: Path) -> FamilyReport:
    report = FamilyReport("bbox_format")
    data = json.loads(Path(path).read_text())
    text = BlipCaptionProcessor()
    with tempfile.TemporaryDirectory() as tmp:
        for part in (_check_rec, _check_vg, _check_flickr):
            try:
                part(report, data, Path(tmp), text)
            except Exception as exc:  # setup failures are reported, not raised
                report.error(part.__name__, exc)
    return report
