"""MiniGPT-4 stage-2 folder (`cc_sbu_align`): `<storage>/filter_cap.json` ({annotations: [{image_id, caption}]})
and `<storage>/image/<image_id>.jpg`. The caption is used raw (official: no text processor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigpt4.datasets.files import check_records, load_json_list
from minigpt4.datasets.formats.annotation_dataset import RecordDataset


class CaptionFolderDataset(RecordDataset):
    LAYOUT = (
        "<storage>/filter_cap.json ({annotations: [{image_id, caption}]}) and <storage>/image/<image_id>.jpg"
    )

    def __init__(self, vis_processor, text_processor, vis_root, ann_paths, name: str = "") -> None:
        name = name or type(self).__name__
        records: list[Any] = []
        for path in ann_paths:
            part = load_json_list(Path(path), name, self.LAYOUT, list_key="annotations")
            check_records(part, ("image_id", "caption"), path, name, self.LAYOUT)
            records.extend(part)
        super().__init__(vis_processor, text_processor, vis_root, records, name)
        # official CaptionDataset: image ids numbered in order of first appearance
        self.img_ids: dict[Any, int] = {}
        for record in records:
            self.img_ids.setdefault(record["image_id"], len(self.img_ids))

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        image, _ = self.load_image(f"{record['image_id']}.jpg")
        return {"image": image, "answer": record["caption"], "image_id": self.img_ids[record["image_id"]]}
