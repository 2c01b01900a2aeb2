"""RefCOCO / RefCOCO+ / RefCOCOg referring expressions (`[refer]`) and their inverse (`[identify]`).

Files (official REFER layout): `<ann_path>/<refcoco|refcoco+|refcocog>/refs(<unc|umd>).p` (a pickle of a list of
refs {ref_id, ann_id, image_id, split, sentences: [{raw, ...}]}) and `.../instances.json` (COCO `annotations`
with `id` and `bbox` [x, y, w, h]). The `inv` prefix of the dataset name is stripped to find the folder; only refs
with `split == "train"` are used; images are `<image_path>/COCO_train2014_<image_id, 12 digits>.jpg`.
The pickle is read with an unpickler that admits only plain containers (a malicious pickle is refused).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.box_text import box_string
from minigpt4.datasets.files import check_records, load_json, load_plain_pickle
from minigpt4.datasets.formats.annotation_dataset import RecordDataset
from minigpt4.datasets.instructions import IDENTIFY_POOL, REFER_POOL, wrap_image

REFER_FOLDERS = ("refcoco", "refcoco+", "refcocog")


def refer_folder(dataset: str) -> str:
    """'invrefcoco+' -> 'refcoco+' (official: dataset.split('inv')[-1])."""
    folder = str(dataset).split("inv")[-1]
    if folder not in REFER_FOLDERS:
        raise DataError(
            f"build_info.dataset {dataset!r} is not one of refcoco, refcoco+, refcocog (optionally "
            f"prefixed with inv)"
        )
    return folder


class ReferCOCODataset(RecordDataset):
    LAYOUT = (
        "<ann_path>/<refcoco|refcoco+|refcocog>/refs(<unc|umd>).p and instances.json; images "
        "<image_path>/COCO_train2014_<image_id, 12 digits>.jpg"
    )
    POOL = REFER_POOL

    def __init__(
        self,
        vis_processor,
        text_processor,
        vis_root,
        ann_path,
        dataset="refcoco",
        splitBy="unc",
        name: str = "",
    ) -> None:
        name = name or type(self).__name__
        folder = Path(ann_path) / refer_folder(dataset)
        layout = self.LAYOUT
        refs = load_plain_pickle(folder / f"refs({splitBy}).p", name, layout)
        if not isinstance(refs, list):
            raise DataError(
                f"{name}: {folder / f'refs({splitBy}).p'} holds a {type(refs).__name__}, expected a "
                f"list of refs. Expected layout: {layout}"
            )
        check_records(
            refs,
            ("ref_id", "ann_id", "image_id", "split", "sentences"),
            folder / f"refs({splitBy}).p",
            name,
            layout,
        )
        instances = load_json(folder / "instances.json", name, layout)
        if not isinstance(instances, dict) or "annotations" not in instances:
            raise DataError(
                f"{name}: {folder / 'instances.json'} has no 'annotations' list. Expected layout: {layout}"
            )
        check_records(instances["annotations"], ("id", "bbox"), folder / "instances.json", name, layout)
        boxes = {annotation["id"]: annotation["bbox"] for annotation in instances["annotations"]}
        train_refs = []
        for ref in refs:
            if ref["split"] != "train":
                continue
            if ref["ann_id"] not in boxes:
                raise DataError(
                    f"{name}: ref {ref['ref_id']} names ann_id {ref['ann_id']}, which "
                    f"{folder / 'instances.json'} does not have"
                )
            if not ref["sentences"]:
                raise DataError(f"{name}: ref {ref['ref_id']} of {folder} has no sentences")
            train_refs.append(
                {
                    "ref_id": ref["ref_id"],
                    "image_id": ref["image_id"],
                    "sentences": [sentence["raw"] for sentence in ref["sentences"]],
                    "bbox": boxes[ref["ann_id"]],
                }
            )
        super().__init__(vis_processor, text_processor, vis_root, train_refs, name)
        self.ref_ids = [ref["ref_id"] for ref in train_refs]

    def preprocess(self, record: dict[str, Any]) -> dict[str, Any]:
        image, (width, height) = self.load_image("COCO_train2014_{:0>12}.jpg".format(record["image_id"]))
        refer_sentence = self.text_processor(random.choice(record["sentences"]))
        return {
            "image": image,
            "refer_sentence": refer_sentence,
            "bbox": box_string(record["bbox"], width, height),
            "image_id": record["image_id"],
        }

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        data = self.preprocess(record)
        instruction = wrap_image(random.choice(self.POOL).format(data["refer_sentence"]))
        return {
            "image": data["image"],
            "instruction_input": instruction,
            "answer": data["bbox"],
            "image_id": data["image_id"],
        }


class InvReferCOCODataset(ReferCOCODataset):
    POOL = IDENTIFY_POOL

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        data = self.preprocess(record)
        instruction = wrap_image(random.choice(self.POOL).format(data["bbox"]))
        # official: the sentence goes through the text processor a second time
        return {
            "image": data["image"],
            "instruction_input": instruction,
            "answer": self.text_processor(data["refer_sentence"]),
            "image_id": data["image_id"],
        }
