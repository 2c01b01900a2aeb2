"""MiniGPT-5 stage 1: CC3M as a TSV (official `dataloader.py:CC3MDataset`).

`<storage>/<file>.tsv` has a header `caption<TAB>image_path`; `image_path` is relative to `storage` (official
DATAFOLDER), e.g. `val/000007775.jpg`. Per data row i (0-based, blank lines not counted):

* source = the `pre_caption`-cleaned caption alone, target = `[IMG0]..[IMG7] ###`, caption = the cleaned caption,
  task name `cc3m_{i}`;
* every 100th row (i % 100 == 0), outside test mode, also an instruction sample `cc3m_{i}_instruction`: source
  `You will be able to generate image according to command.###Human: {prompt} {caption} ###Assistant:`,
  prompt chosen from `GENERATION_PROMPTS`.

Test mode: no instruction samples, and the target is the caption (official `self.targets = self.caption`).
Ours: rows with too few fields, an empty caption or a missing image are skipped and counted (the official code
would crash, or fail later in a worker); the row index i still counts them, so task names and the every-100th
rule are those of the official code on the same file. No pickle cache (the official `*_8-token_stage1.pkl` is
reused even when the TSV changed): reading is a single pass.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from minigpt4.common.errors import DataError
from minigpt4.datasets.files import require_file
from minigpt4.datasets.formats.minigpt5 import (
    GENERATION_TARGET,
    Chooser,
    Minigpt5Dataset,
    Minigpt5Record,
    SkipCounter,
    resolve,
)
from minigpt4.processors.text import pre_caption

LAYOUT = (
    "a TSV with a header line `caption<TAB>image_path`, one image per row, image_path relative to the "
    "dataset's build_info.storage (official DATAFOLDER), e.g. `val/000007775.jpg`"
)
SYSTEM_PROMPT = "You will be able to generate image according to command."
# official HEAD (spec §3.1); an older revision spelt the sixth "a image with caption:"
GENERATION_PROMPTS = (
    "generate image with caption:",
    "can you give me the image with caption:",
    "help me to generate this image:",
    "generate image with according to caption:",
    "according to caption, generate image:",
    "an image with caption:",
    "can you visualize this caption:",
)
INSTRUCTION_EVERY = 100
NO_WORD_LIMIT = 10**9  # official MiniGPT-5 pre_caption has the max_words cut commented out
REQUIRED_COLUMNS = ("caption", "image_path")


def clean_caption(caption: str) -> str:
    """Official MiniGPT-5 `pre_caption`: the LAVIS cleaning without the word limit."""
    return pre_caption(caption, max_words=NO_WORD_LIMIT)


def read_rows(path: Path, name: str) -> Iterator[tuple[int, int, dict[str, str] | None]]:
    """(row index i, line number, {column: value} or None when the row has too few fields). Blank lines are
    skipped without taking an index, as pandas `read_csv` does."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or any(column not in header for column in REQUIRED_COLUMNS):
            raise DataError(
                f"{name}: {path} has header {header!r}, expected {REQUIRED_COLUMNS}. Expected layout: {LAYOUT}"
            )
        index = 0
        for row in reader:
            if not row or all(not value.strip() for value in row):
                continue
            values = dict(zip(header, row)) if len(row) >= len(header) else None
            yield index, reader.line_num, values
            index += 1


def cc3m_records(
    tsv: str | Path,
    storage: str | Path,
    test: bool = False,
    choose: Chooser | None = None,
    check_images: bool = True,
    instruction_every: int = INSTRUCTION_EVERY,
    name: str = "cc3m",
) -> tuple[list[Minigpt5Record], SkipCounter, int]:
    """Records of one TSV, the skipped-row counter and the number of data rows read."""
    path = require_file(tsv, f"{name} TSV", LAYOUT)
    root = Path(storage)
    choose = choose or random.Random(0).choice
    skipped = SkipCounter(name, path)
    records: list[Minigpt5Record] = []
    rows = 0
    for index, line, values in read_rows(path, name):
        rows += 1
        where = f"{path.name} line {line}"
        if values is None:
            skipped.skip("rows with fewer fields than the header", where)
            continue
        caption = clean_caption(values["caption"])
        if not caption:
            skipped.skip("empty captions", where)
            continue
        if not values["image_path"].strip():
            skipped.skip("empty image paths", where)
            continue
        image = resolve(root, values["image_path"])
        if check_images and not Path(image).is_file():
            skipped.skip("missing images", f"{where}: {image}")
            continue
        records.append(Minigpt5Record(caption, GENERATION_TARGET, (None,), image, caption, f"cc3m_{index}"))
        if index % instruction_every == 0 and not test:
            source = f"{SYSTEM_PROMPT}###Human: {choose(GENERATION_PROMPTS)} {caption} ###Assistant:"
            records.append(
                Minigpt5Record(
                    source, GENERATION_TARGET, (None,), image, caption, f"cc3m_{index}_instruction"
                )
            )
    if test:  # official test mode: the caption is the target
        records = [
            Minigpt5Record(r.source, r.caption or "", r.input_images, r.output_image, r.caption, r.task_name)
            for r in records
        ]
    return records, skipped, rows


class CC3MDataset(Minigpt5Dataset):
    LAYOUT = LAYOUT

    @classmethod
    def read(cls, path, storage, tokenizer, *, test, choose, build_info, name):
        return cc3m_records(
            path,
            storage,
            test=test,
            choose=choose,
            check_images=bool(build_info.get("check_images", True)),
            instruction_every=int(build_info.get("instruction_every", INSTRUCTION_EVERY)),
            name=name,
        )
