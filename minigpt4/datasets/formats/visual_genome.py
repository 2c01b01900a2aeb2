"""Visual Genome region descriptions as referring expressions (`refvg`, `[refer]`).

Files: `<data_dir>/image_data.json` (list of {image_id or id, url: '.../VG_100K[_2]/<file>.jpg', width, height}),
`<data_dir>/region_descriptions.json` (list of {id: image id, regions: [{region_id, image_id, phrase, x, y, width,
height}]}) and the images `<data_dir>/VG_100K/` and `<data_dir>/VG_100K_2/` (the last two parts of `url`).
Official quirk kept: only regions with width * height < 16384 are used ("follow OFA").
Regions are kept as compact tuples: the real file has 5.4 M of them.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.box_text import box_string
from minigpt4.datasets.files import check_records, load_json_list
from minigpt4.datasets.formats.annotation_dataset import RecordDataset
from minigpt4.datasets.instructions import REFER_POOL, wrap_image

MAX_REGION_AREA = 16384
logger = logging.getLogger(__name__)


class ReferVisualGenomeDataset(RecordDataset):
    POOL = REFER_POOL
    LAYOUT = (
        "<data_dir>/image_data.json, <data_dir>/region_descriptions.json, images <data_dir>/VG_100K/ and "
        "<data_dir>/VG_100K_2/ (the last two parts of each image url)"
    )

    def __init__(self, vis_processor, text_processor, data_dir, name: str = "") -> None:
        name = name or type(self).__name__
        data_dir = Path(data_dir)
        image_files = self._image_files(data_dir / "image_data.json", name)
        regions_path = data_dir / "region_descriptions.json"
        per_image = load_json_list(regions_path, name, self.LAYOUT)
        check_records(per_image, ("regions",), regions_path, name, self.LAYOUT)
        regions: list[tuple[str, int, float, float, float, float, str]] = []
        self.regions_total = 0
        for index, entry in enumerate(per_image):
            image_id = entry.get("id", entry.get("image_id"))
            if image_id not in image_files:
                raise DataError(
                    f"{name}: entry {index} of {regions_path} names image {image_id!r}, which "
                    f"image_data.json does not list"
                )
            check_records(
                entry["regions"], ("phrase", "x", "y", "width", "height"), regions_path, name, self.LAYOUT
            )
            for region in entry["regions"]:
                self.regions_total += 1
                if region["width"] * region["height"] < MAX_REGION_AREA:
                    regions.append(
                        (
                            image_files[image_id],
                            image_id,
                            region["x"],
                            region["y"],
                            region["width"],
                            region["height"],
                            region["phrase"],
                        )
                    )
        logger.info(
            "%s: %d of %d regions have width * height < %d (official filter, following OFA)",
            name,
            len(regions),
            self.regions_total,
            MAX_REGION_AREA,
        )
        super().__init__(vis_processor, text_processor, data_dir, regions, name)

    def _image_files(self, path: Path, name: str) -> dict[Any, str]:
        images = load_json_list(path, name, self.LAYOUT)
        check_records(images, ("url",), path, name, self.LAYOUT)
        files = {}
        for index, image in enumerate(images):
            image_id = image.get("image_id", image.get("id"))
            if image_id is None:
                raise DataError(f"{name}: record {index} of {path} has neither 'image_id' nor 'id'")
            files[image_id] = "/".join(str(image["url"]).split("/")[-2:])
        return files

    def sample(self, record: tuple) -> dict[str, Any]:
        image_file, image_id, x, y, width, height, phrase = record
        image, (image_width, image_height) = self.load_image(image_file)
        refer_sentence = self.text_processor(phrase)
        bbox = box_string([x, y, width, height], image_width, image_height)
        instruction = wrap_image(random.choice(self.POOL).format(refer_sentence))
        return {"image": image, "instruction_input": instruction, "answer": bbox, "image_id": image_id}
