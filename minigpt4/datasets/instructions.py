"""Instruction pools of the official datasets, verbatim (official_anatomy.md §4.3), and the v2 image wrapper."""

from __future__ import annotations

IMAGE_WRAP = "<Img><ImageHere></Img> {} "
"""Every single-turn v2 instruction is wrapped this way (note the trailing space)."""

CONNECT_SYM = "!@#"
"""Separator of the turns in `conv_q` / `conv_a` (multi-turn datasets)."""

REFER_POOL = (
    "[refer] {}",
    "[refer] give me the location of {}",
    "[refer] where is {} ?",
    "[refer] from this image, tell me the location of {}",
    "[refer] the location of {} is",
    "[refer] could you tell me the location for {} ?",
    "[refer] where can I locate the {} ?",
)

IDENTIFY_POOL = (
    "[identify] {}",
    "[identify] what object is in this location {}",
    "[identify] identify the object present at this location {}",
    "[identify] what is it in {}",
    "[identify] describe this object in {}",
    "[identify] this {} is",
    "[identify] the object in {} is",
)

VQA_POOL = (
    "[vqa] {}",
    "[vqa] Based on the image, respond to this question with a short answer: {}",
)

CAPTION_POOL = (
    "Briefly describe this image.",
    "Provide a concise depiction of this image.",
    "Present a short description of this image.",
    "Summarize this image in a few words.",
    "A short image caption:",
    "A short image description:",
    "A photo of ",
    "An image that shows ",
    "Write a short description for the image. ",
    "Write a description for the photo.",
    "Provide a description of what is presented in the photo.",
    "Briefly describe the content of the image.",
    "Can you briefly explain what you see in the image?",
    "Could you use a few words to describe what you perceive in the photo?",
    "Please provide a short depiction of the picture.",
    "Using language, provide a short account of the image.",
    "Use a few words to illustrate what is happening in the picture.",
)
CAPTION_TEMPLATE = "[caption] {}"

GROUNDING_POOL = (
    "[grounding] please describe this image in details",
    "[grounding] describe this image as detailed as possible",
    "[grounding] summarize this image in details",
    "[grounding] give a thorough description of what you see in this image",
)

DETECTION_POOL = ("[detection] {}",)


def wrap_image(instruction: str) -> str:
    return IMAGE_WRAP.format(instruction)
