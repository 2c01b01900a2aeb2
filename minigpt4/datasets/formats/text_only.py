"""Text-only instruction data (`unnatural_instruction`, data_type: text): no image key in the samples.

File: `<ann_path>` JSON list of {instances: [{instruction_with_input, constraints (str or null), output}]};
the first instance is used, the constraints appended after a space; both sides go through the text processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.files import check_records, load_json_list
from minigpt4.datasets.formats.annotation_dataset import RecordDataset


class UnnaturalInstructionDataset(RecordDataset):
    LAYOUT = "<ann_path>: JSON list of {instances: [{instruction_with_input, constraints, output}, ...]}"

    def __init__(self, text_processor, ann_path, name: str = "") -> None:
        name = name or type(self).__name__
        records = load_json_list(Path(ann_path), name, self.LAYOUT)
        check_records(records, ("instances",), ann_path, name, self.LAYOUT)
        for index, record in enumerate(records):
            instances = record["instances"]
            if not isinstance(instances, list) or not instances:
                raise DataError(
                    f"{name}: record {index} of {ann_path} has no instances. Expected layout: {self.LAYOUT}"
                )
            check_records(
                instances[:1],
                ("instruction_with_input", "constraints", "output"),
                ann_path,
                name,
                self.LAYOUT,
            )
        super().__init__(None, text_processor, None, records, name)

    def sample(self, record: dict[str, Any]) -> dict[str, Any]:
        info = record["instances"][0]
        instruction = info["instruction_with_input"]
        if info["constraints"] is not None:
            instruction = instruction + " " + info["constraints"]
        return {
            "instruction_input": self.text_processor(instruction),
            "answer": self.text_processor(info["output"]),
        }
