"""The official benchmark prompts and VizWiz answer texts, shared by the training builders (`datasets/formats/`)
and the evaluation (`evaluation/postprocess.py`), which must use them verbatim (parity family `eval_postprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence

VQA_PROMPT = "[vqa] Based on the image, respond to this question with a short answer: {}"
VIZWIZ_PROMPT = (
    "[vqa] The question is '{}' Based on the image, answer the question with a single word or phrase. "
    "and reply 'unanswerable' when the provided information is insufficient"
)
VSR_PROMPT = "[vqa] Based on the image, is this statement true or false? {}"
HM_PROMPT = "This is an image writting '{}'. Is this image hateful? Answer yes or no. Answer:"
CAPTION_PROMPT = "[caption] Briefly describe this image."
# IconVQA builds its prompt by hand instead of through the conversation template (official).
ICONVQA_TEMPLATE = "<s>[INST] <Img><ImageHere></Img> {} [/INST]"


def vizwiz_answer_texts(answers: Sequence[dict | str]) -> list[str]:
    """The annotator answers' texts ({answer: ...} records or plain strings)."""
    return [item["answer"] if isinstance(item, dict) else item for item in answers]
