"""Official quirks of the dataset layer that we knowingly change, declared in one place.

The official default YAMLs (`minigpt4/configs/datasets/*/defaults.yaml` at Vision-CAIR/MiniGPT-4 d94738a) carry two
placeholder-path typos. Our default YAMLs hold the corrected paths; config-merge parity applies this table to the
official values before comparing, so the fix is visible and checked rather than silent.
"""

from __future__ import annotations

PLACEHOLDER_PATH_FIXES: dict[str, str] = {
    # flickr_grounded_caption, flickr_CaptionToPhrase (image_path) and flickr_ObjectToPhrase
    "filtered_flikcr": "filtered_flickr",
    # multitask_conversation: the dataset README names the file multitask_conversation.json
    "multi_task_conversation.json": "multitask_conversation.json",
}


def fix_placeholder_path(path: str) -> str:
    """`path` with every official placeholder typo replaced by its correction."""
    for typo, correction in PLACEHOLDER_PATH_FIXES.items():
        path = path.replace(typo, correction)
    return path
