"""MiniGPT-5 stage 2: VIST stories (official `dataloader.py:VISTDataset`).

`<storage>/<split>_cleaned.json` = `{story_id: [{caption, image_id, sequence_index}, ...]}` and, beside it, the
same name with `cleaned` -> `image_mapping`: `{image_id: "<split>_images/000000005.jpg"}` relative to `storage`
(official DATAFOLDER). Per story, per step (list order), with `history` = the previous captions joined by
`<Img><ImageHere></Img>`, plus a trailing `<Img><ImageHere></Img>\\n` when there are any:

* `{story}_{sequence_index}-gen` (always): `###Human:{history} Generate an image with the scene description:
  {caption} ###Assistant:` (or `... the scene description: ...`) -> `[IMG0]..[IMG7] ###`, output = the step's image;
* `-multimodal` (not in test mode, steps after the first): `###Human:{history} Tell me the next scene with
  image. ###Assistant:` (or two other prompts) -> `{caption} [IMG0]..[IMG7] ###`;
* `-understanding` (same condition): `###Human:{history} Tell me the next scene description by this image:
  <Img><ImageHere></Img> ###Assistant:` (or one other) -> `{caption} ###`, the step's image appended to the
  inputs and no output image.

Every source starts with the system prompt; inputs are the previous steps' images (`[None]` when none); no
caption (stage 2 has no caption loss). Ours: a step whose image id is not in the mapping, whose image file is
missing or whose caption is empty (or not a string) ends its story there (the later steps' history would need
it), counted; a story that is not a list of step objects is skipped, counted.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from minigpt4.common.errors import DataError
from minigpt4.datasets.files import load_json
from minigpt4.datasets.formats.minigpt5 import (
    GENERATION_TARGET,
    IMAGE_SLOT,
    VOKEN_TEXT,
    Chooser,
    Minigpt5Dataset,
    Minigpt5Record,
    SkipCounter,
    resolve,
)

LAYOUT = (
    "<storage>/<split>_cleaned.json {story_id: [{caption, image_id, sequence_index}, ...]} and "
    "<storage>/<split>_image_mapping.json {image_id: path relative to storage, e.g. val_images/000000005.jpg}"
)
SYSTEM_PROMPT = (
    "Give the following images in <Img>ImageContent</Img> format. You will be able to see the images once I "
    "provide it to you. Please understanding images and generate story."
)
GENERATION_PROMPTS = (
    "###Human:{prompt} Generate an image with the scene description: {step_text} ###Assistant:",
    "###Human:{prompt} the scene description: {step_text} ###Assistant:",
)
MULTIMODAL_PROMPTS = (
    "###Human:{prompt} Tell me the next scene with image. ###Assistant:",
    "###Human:{prompt} Generate the next scene with image. ###Assistant:",
    "###Human:{prompt} What should happen then? ###Assistant:",
)
UNDERSTANDING_PROMPTS = (
    f"###Human:{{prompt}} Tell me the next scene description by this image: {IMAGE_SLOT} ###Assistant:",
    f"###Human:{{prompt}} What happen in the next scene image: {IMAGE_SLOT} ###Assistant:",
)
STEP_KEYS = ("caption", "image_id", "sequence_index")


def mapping_path(data_path: Path) -> Path:
    """Official: the data file name with `cleaned` replaced by `image_mapping`."""
    if "cleaned" not in data_path.name:
        raise DataError(
            f"VIST: {data_path} has no `cleaned` in its name, so its image mapping cannot be found. "
            f"Expected layout: {LAYOUT}"
        )
    return data_path.with_name(data_path.name.replace("cleaned", "image_mapping"))


def history_prompt(captions: list[str]) -> str:
    """Previous captions joined by the image slot, plus a trailing slot and newline when non-empty."""
    prompt = IMAGE_SLOT.join(captions)
    return f"{prompt}{IMAGE_SLOT}\n" if captions else prompt


def vist_records(
    data_path: str | Path,
    storage: str | Path,
    test: bool = False,
    choose: Chooser | None = None,
    check_images: bool = True,
    name: str = "vist",
) -> tuple[list[Minigpt5Record], SkipCounter, int]:
    """Records of one `*_cleaned.json`, the skip counter and the number of stories read."""
    path = Path(data_path)
    stories = load_json(path, f"{name} stories", LAYOUT)
    mapping = load_json(mapping_path(path), f"{name} image mapping", LAYOUT)
    if not isinstance(stories, dict) or not isinstance(mapping, dict):
        raise DataError(
            f"{name}: {path} and its image mapping must both be JSON objects. Expected layout: {LAYOUT}"
        )
    root = Path(storage)
    choose = choose or random.Random(0).choice
    skipped = SkipCounter(name, path)
    records: list[Minigpt5Record] = []
    for story_id, steps in stories.items():
        if not isinstance(steps, list):
            skipped.skip("stories that are not lists of steps", f"story {story_id}")
            continue
        records.extend(_story_records(story_id, steps, mapping, root, test, choose, check_images, skipped))
    return records, skipped, len(stories)


def _step_problem(
    step: Any, mapping: dict[str, Any], root: Path, check_images: bool
) -> tuple[str, str] | None:
    """(reason, detail) when the step cannot be used."""
    if not isinstance(step, dict) or any(key not in step for key in STEP_KEYS):
        return "steps without caption, image_id and sequence_index", ""
    if not isinstance(step["caption"], str) or not step["caption"].strip():
        return "empty captions", ""
    if str(step["image_id"]) not in mapping:
        return "image ids missing from the image mapping", f"image_id {step['image_id']}"
    image = resolve(root, mapping[str(step["image_id"])])
    if check_images and not Path(image).is_file():
        return "missing images", image
    return None


def _story_records(
    story_id: str,
    steps: list[Any],
    mapping: dict[str, Any],
    root: Path,
    test: bool,
    choose: Chooser,
    check_images: bool,
    skipped: SkipCounter,
) -> list[Minigpt5Record]:
    records: list[Minigpt5Record] = []
    captions: list[str] = []
    images: list[str] = []
    for position, step in enumerate(steps):
        problem = _step_problem(step, mapping, root, check_images)
        if problem is not None:
            reason, detail = problem
            skipped.skip(f"stories cut at {reason}", f"story {story_id} step {position} {detail}".rstrip())
            break
        text = step["caption"]
        image = resolve(root, mapping[str(step["image_id"])])
        prompt = history_prompt(captions)
        inputs = tuple(images) or (None,)
        step_name = f"{story_id}_{step['sequence_index']}"
        source = SYSTEM_PROMPT + choose(GENERATION_PROMPTS).format(prompt=prompt, step_text=text)
        records.append(Minigpt5Record(source, GENERATION_TARGET, inputs, image, None, f"{step_name}-gen"))
        if captions and not test:
            source = SYSTEM_PROMPT + choose(MULTIMODAL_PROMPTS).format(prompt=prompt)
            target = f"{text} {VOKEN_TEXT} ###"
            records.append(Minigpt5Record(source, target, inputs, image, None, f"{step_name}-multimodal"))
            source = SYSTEM_PROMPT + choose(UNDERSTANDING_PROMPTS).format(prompt=prompt)
            records.append(
                Minigpt5Record(
                    source, f"{text} ###", (*images, image), None, None, f"{step_name}-understanding"
                )
            )
        captions.append(text)
        images.append(image)
    return records


class VISTDataset(Minigpt5Dataset):
    LAYOUT = LAYOUT
    UNIT = "stories"

    @classmethod
    def read(cls, path, storage, tokenizer, *, test, choose, build_info, name):
        return vist_records(
            path,
            storage,
            test=test,
            choose=choose,
            check_images=bool(build_info.get("check_images", True)),
            name=name,
        )
