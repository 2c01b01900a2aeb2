"""Pure functions where the official prompt layout lives: `<ImageHere>` splitting, context layouts with image slots,
answer targets, multi-turn label masks and the condition/answer concatenation.

Nothing here touches a model or a tokenizer: inputs are strings, lists of token ids and tensors, so tests compare
them with the fixtures directly. A context row is described by two (B, L) tensors: `token_ids` (the pad id where the
row holds an image token or padding) and `image_index` (the flat index into the batch's image tokens
`image_embeds.reshape(-1, D)`, -1 for text and padding). The model embeds all text of a batch with one lookup and
gathers all image tokens with one indexing op (`splice_image_embeds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from minigpt4.common.errors import DataError

IMAGE_PLACEHOLDER = "<ImageHere>"
IGNORE_INDEX = -100


def split_image_prompt(prompt: str) -> list[str]:
    """Text segments around `<ImageHere>`: K placeholders give K + 1 segments (possibly empty)."""
    return prompt.split(IMAGE_PLACEHOLDER)


def load_prompt_list(path: str | Path, template: str) -> list[str]:
    """Official prompt file rule: keep lines holding `<ImageHere>`, format each into `template` ("" = none)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if IMAGE_PLACEHOLDER in line]
    # The official code formats with the template even when it is "" (format of "" gives "").
    return [template.format(line) for line in kept]


def apply_template(template: str, texts: Sequence[str]) -> list[str]:
    return [template.format(text) for text in texts]


def context_layout(
    segment_ids: Sequence[Sequence[Sequence[int]]],
    image_tokens_per_sample: int,
    tokens_per_image: int,
    pad_id: int,
    max_len: int | None = None,
    left_pad: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Lay out each sample as seg_0, image 0, seg_1, image 1, ..., seg_K, padded to the batch maximum.

    segment_ids[b][k]: token ids of text segment k of sample b (K_b + 1 segments for K_b images).
    image_tokens_per_sample: T, the image tokens each sample owns (the k-th image of sample b is the flat range
    b*T + k*P ... b*T + (k+1)*P - 1 with P = tokens_per_image).
    max_len: rows longer than this are cut (official `max_context_len`); None = no cap.
    left_pad: pad on the left (generation) instead of the right (training).
    Returns token_ids (B, L) long, image_index (B, L) long (-1 = not an image token), attention (B, L) int32.
    """
    rows_ids: list[list[int]] = []
    rows_img: list[list[int]] = []
    for sample, segments in enumerate(segment_ids):
        num_images = len(segments) - 1
        if num_images * tokens_per_image > image_tokens_per_sample:
            raise DataError(
                f"sample {sample}: the prompt has {num_images} {IMAGE_PLACEHOLDER} placeholder(s) but only "
                f"{image_tokens_per_sample // max(tokens_per_image, 1)} image(s) were given; "
                "give one image per placeholder"
            )
        ids: list[int] = []
        img: list[int] = []
        for k, segment in enumerate(segments):
            ids.extend(segment)
            img.extend([-1] * len(segment))
            if k < num_images:
                start = sample * image_tokens_per_sample + k * tokens_per_image
                ids.extend([pad_id] * tokens_per_image)
                img.extend(range(start, start + tokens_per_image))
        rows_ids.append(ids)
        rows_img.append(img)
    lengths = [len(r) for r in rows_ids]
    if max_len is not None:
        lengths = [min(n, max_len) for n in lengths]
    width = max(lengths) if lengths else 0
    token_ids = torch.full((len(rows_ids), width), pad_id, dtype=torch.long)
    image_index = torch.full((len(rows_ids), width), -1, dtype=torch.long)
    attention = torch.zeros((len(rows_ids), width), dtype=torch.int32)
    for b, (ids, img, n) in enumerate(zip(rows_ids, rows_img, lengths)):
        # one slice assignment per sample: rows have different lengths
        span = slice(width - n, width) if left_pad else slice(0, n)
        token_ids[b, span] = torch.tensor(ids[:n], dtype=torch.long)
        image_index[b, span] = torch.tensor(img[:n], dtype=torch.long)
        attention[b, span] = 1
    return token_ids, image_index, attention


def splice_image_embeds(text_embeds: Tensor, image_index: Tensor, image_embeds: Tensor | None) -> Tensor:
    """Put image tokens into their slots. text_embeds: (B, L, D); image_index: (B, L); image_embeds: (B', T, D)."""
    if image_embeds is None or not bool((image_index >= 0).any()):
        return text_embeds
    flat = image_embeds.reshape(-1, image_embeds.shape[-1]).to(text_embeds.dtype)  # (B'*T, D)
    gathered = flat[image_index.clamp(min=0)]  # (B, L, D)
    return torch.where((image_index >= 0)[..., None], gathered, text_embeds)


def answer_targets(answer_ids: Tensor, pad_id: int) -> Tensor:
    """Official `part_targets`: answer ids with every pad id (including a genuine "$$") set to -100."""
    return answer_ids.masked_fill(answer_ids == pad_id, IGNORE_INDEX)


def conversation_ids(
    later_question_ids: Sequence[Sequence[Sequence[int]]],
    answer_ids: Sequence[Sequence[Sequence[int]]],
    max_txt_len: int,
    pad_id: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Official `tokenize_conversation` on ids: rows a1, q2, a2, ..., aN (q1 went through the context layout).

    later_question_ids[b]: ids of questions 2..N of sample b (already `bos_token + templated question`);
    answer_ids[b]: ids of answers 1..N (`answer + end_sym`). Questions are masked with -100, answers kept.
    Rows are right-padded (ids: pad id, targets: -100) to min(longest row, max_txt_len) and cut there.
    Returns ids (B, L) long, attention (B, L) int32 (= ids != pad id, so a genuine "$$" gets 0), targets (B, L).
    """
    rows_ids: list[list[int]] = []
    rows_tgt: list[list[int]] = []
    for questions, answers in zip(later_question_ids, answer_ids):
        if len(answers) != len(questions) + 1:
            raise DataError(
                f"a conversation has {len(questions) + 1} question(s) but {len(answers)} answer(s); "
                "conv_q and conv_a must have the same number of turns"
            )
        ids: list[int] = []
        tgt: list[int] = []
        for question, answer in zip(questions, answers[:-1]):
            ids += list(answer) + list(question)
            tgt += list(answer) + [IGNORE_INDEX] * len(question)
        ids += list(answers[-1])
        tgt += list(answers[-1])
        rows_ids.append(ids)
        rows_tgt.append(tgt)
    width = min(max(len(r) for r in rows_ids), max_txt_len)
    token_ids = torch.full((len(rows_ids), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows_ids), width), IGNORE_INDEX, dtype=torch.long)
    for b, (ids, tgt) in enumerate(zip(rows_ids, rows_tgt)):
        n = min(len(ids), width)
        token_ids[b, :n] = torch.tensor(ids[:n], dtype=torch.long)
        targets[b, :n] = torch.tensor(tgt[:n], dtype=torch.long)
    return token_ids, (token_ids != pad_id).to(torch.int32), targets


def concat_gather_index(cond_atts: Tensor, answer_len: int) -> tuple[Tensor, Tensor]:
    """Index that turns cat([cond (B, Lc), answer (B, La)], 1) into [cond valid][answer][cond padding] per row.

    This is the official `concat_emb_input_output` layout without a per-sample loop.
    cond_atts: (B, Lc) with 1 on the valid prefix. Returns index (B, Lc + La) long and cond lengths (B,) long.
    """
    cond_lens = cond_atts.sum(dim=1).long()  # (B,)
    cond_width = cond_atts.shape[1]
    position = torch.arange(cond_width + answer_len, device=cond_atts.device)[None, :]  # (1, Lc+La)
    length = cond_lens[:, None]
    index = torch.where(
        position < length,
        position,
        torch.where(position < length + answer_len, cond_width + position - length, position - answer_len),
    )
    return index, cond_lens


def gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """values: (B, L, ...) gathered along dim 1 with index (B, L')."""
    if values.ndim == 2:
        return values.gather(1, index)
    return values.gather(1, index[..., None].expand(-1, -1, values.shape[-1]))


def training_targets(cond_atts: Tensor, part_targets: Tensor) -> Tensor:
    """Targets of the LLM input [BOS][cond valid][answer][cond pad]: answer targets, -100 elsewhere. (B, 1+Lc+La)."""
    ignore = torch.full_like(cond_atts, IGNORE_INDEX, dtype=torch.long)
    index, _ = concat_gather_index(cond_atts, part_targets.shape[1])
    body = gather_rows(torch.cat([ignore, part_targets], dim=1), index)
    bos = torch.full_like(body[:, :1], IGNORE_INDEX)
    return torch.cat([bos, body], dim=1)


def postprocess_answer(text: str) -> str:
    """Official `generate` post-processing of a decoded answer (after `skip_special_tokens` decoding)."""
    text = text.split("</s>")[0]
    text = text.replace("<s>", "")
    return text.split("[/INST]")[-1].strip()
