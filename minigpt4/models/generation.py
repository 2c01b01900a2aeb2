"""Batched generation and candidate ranking shared by MiniGPT-4 and MiniGPT-v2 (official `MiniGPTBase.generate` /
`multi_select`).

transformers 4.30 (the official runtime) started `generate(inputs_embeds=...)` from a BOS placeholder id that
transformers 5 does not have. We restore its visible effects: the returned ids carry the placeholder column,
`min_length` counts it, and `repetition_penalty` also penalises the BOS logit (`PlaceholderBosPenalty`). One
difference remains, in beam search only: beams that end on EOS are scored alike, but 4.30 divided the score of a
beam cut at max_new_tokens (and its early-stopping estimate) by a length one token longer than transformers 5 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
)

from minigpt4.models import prompting

if TYPE_CHECKING:
    import PIL.Image


@dataclass
class GenerationResult:
    """What a generation call returns, one entry per batch row.

    texts: the decoded answer of each row; token_ids: the new token ids of each row, (N_b,) each.
    images / voken_states: filled by models that also generate images (MiniGPT-5): the generated images of each
    row, and the (B, 8, D) hidden states of the image tokens; None for text-only models.
    """

    texts: list[str]
    token_ids: list[Tensor]
    images: list[list[PIL.Image.Image]] | None = None
    voken_states: Tensor | None = None


class StopOnSequences(StoppingCriteria):
    """Per-row stop when a row's newest tokens equal any of the given id sequences."""

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        self.sequences = [torch.tensor(list(s), dtype=torch.long) for s in sequences]

    def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs: Any) -> Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for stop in self.sequences:  # a handful of stop strings, each compared with the whole batch at once
            if input_ids.shape[1] >= len(stop):
                done |= (input_ids[:, -len(stop) :] == stop.to(input_ids.device)).all(dim=1)
        return done


class PlaceholderBosPenalty(LogitsProcessor):
    """Apply `repetition_penalty` to the BOS logit of rows that have not generated BOS themselves.

    transformers 4.30 kept its BOS placeholder in `input_ids`, so its repetition penalty always covered BOS;
    transformers 5 penalises generated ids only. Column-wise, so it commutes with the other logits processors.
    """

    def __init__(self, penalty: float, bos_token_id: int) -> None:
        self.penalty = float(penalty)
        self.bos_token_id = int(bos_token_id)

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        column = scores[:, self.bos_token_id]
        penalised = torch.where(column < 0, column * self.penalty, column / self.penalty)
        seen = (input_ids == self.bos_token_id).any(dim=1)  # already penalised by transformers' own processor
        scores = scores.clone()
        scores[:, self.bos_token_id] = torch.where(seen, column, penalised)
        return scores


def repetition_penalty_processors(
    penalty: float, bos_token_id: int, attention_mask: Tensor | None = None
) -> LogitsProcessorList:
    """The repetition penalty of a `generate(inputs_embeds=...)` call, as logits processors: transformers' own
    processor, built with the arguments `generate(repetition_penalty=...)` gives it (so the ids are the same), then
    `PlaceholderBosPenalty`. Passed this way, generate does not warn that the prompt goes unpenalised: with
    inputs_embeds the prompt has no ids, as in 4.30, whose input_ids held only the BOS placeholder.
    attention_mask: (B, L) of the inputs_embeds, or None."""
    if penalty == 1:
        return LogitsProcessorList()
    left_padding = (attention_mask != 0).int().argmax(dim=1) if attention_mask is not None else None
    return LogitsProcessorList(
        [
            RepetitionPenaltyLogitsProcessor(float(penalty), prompt_ignore_length=left_padding),
            PlaceholderBosPenalty(penalty, bos_token_id),
        ]
    )


def stop_kwargs(stop_words_ids: Sequence[int | Sequence[int]] | None, eos_token_id: int) -> dict[str, Any]:
    """generate() kwargs for extra stops: single ids join eos_token_id, longer sequences a stopping criterion."""
    if not stop_words_ids:
        return {}
    stops = [[int(s)] if isinstance(s, int) or (isinstance(s, Tensor) and s.ndim == 0) else [int(t) for t in s]
             for s in stop_words_ids]  # fmt: skip
    kwargs: dict[str, Any] = {}
    singles = [s[0] for s in stops if len(s) == 1]
    if singles:
        kwargs["eos_token_id"] = [eos_token_id, *singles]
    longer = [s for s in stops if len(s) > 1]
    if longer:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnSequences(longer)])
    return kwargs


class GenerationMixin:
    """Needs `encode_img`, `_ids`, `embed_tokens`, `llama_model`, `llama_tokenizer`, `maybe_autocast`, `forward`."""

    @torch.no_grad()
    def generation_inputs(self, images: Tensor, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Left-padded with ZERO vectors (official): inputs_embeds (B, L, D), attention_mask (B, L) int32."""
        img_embeds, _ = self.encode_img(images.to(self.device))
        split = [prompting.split_image_prompt(t) for t in texts]
        firsts = self._ids([s[0] for s in split], add_special_tokens=True)
        rests = [self._ids(s[1:]) for s in split]
        segments = [[first, *rest] for first, rest in zip(firsts, rests)]
        token_ids, image_index, atts = prompting.context_layout(
            segments, img_embeds.shape[1], img_embeds.shape[1], self.pad_token_id, left_pad=True
        )
        embeds = prompting.splice_image_embeds(
            self.embed_tokens(token_ids), image_index.to(self.device), img_embeds
        )
        atts = atts.to(self.device)
        return embeds * atts[..., None].to(embeds.dtype), atts

    @torch.no_grad()
    def generate(self, images: Tensor, texts: Sequence[str], **options: Any) -> list[str]:
        """Batched answers with the official post-processing; `options` are those of `generate_ids`
        (num_beams, max_new_tokens, min_length, top_p, repetition_penalty, length_penalty, temperature,
        do_sample, stop_words_ids)."""
        return self.decode_answers(self.generate_ids(images, texts, **options))

    @torch.no_grad()
    def generate_ids(
        self,
        images: Tensor,
        texts: Sequence[str],
        num_beams: int = 1,
        max_new_tokens: int = 20,
        min_length: int = 1,
        top_p: float = 0.9,
        repetition_penalty: float = 1,
        length_penalty: float = 1,
        temperature: float = 1,
        do_sample: bool = False,
        stop_words_ids: Sequence[int | Sequence[int]] | None = None,
    ) -> Tensor:
        """(B, 1 + new tokens) in the transformers-4.30 layout: a BOS placeholder column, then the new tokens.

        `stop_words_ids` is None by default because the official call leaves its stopping criteria commented out;
        given stops (token ids, or id sequences such as [[835], [2277, 29937]]) end a row when generated, besides
        EOS."""
        embeds, atts = self.generation_inputs(images, texts)
        kwargs: dict[str, Any] = {}
        if do_sample:  # top_p matters only when sampling; transformers warns if greedy search gets it
            kwargs["top_p"] = top_p
        kwargs.update(stop_kwargs(stop_words_ids, int(self.llama_tokenizer.eos_token_id)))
        if repetition_penalty != 1:
            bos_id = self.llama_tokenizer.bos_token_id
            kwargs["logits_processor"] = repetition_penalty_processors(repetition_penalty, bos_id, atts)
        with self.maybe_autocast():
            new_tokens = self.llama_model.generate(
                inputs_embeds=embeds,
                attention_mask=atts,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                length_penalty=length_penalty,
                temperature=temperature,
                do_sample=do_sample,
                # 4.30 counted its BOS placeholder in min_length: min_length=m means m-1 new tokens
                min_new_tokens=max(int(min_length) - 1, 0),
                **kwargs,
            )
        bos = torch.full_like(new_tokens[:, :1], self.llama_tokenizer.bos_token_id)
        return torch.cat([bos, new_tokens], dim=1)

    def decode_answers(self, output_ids: Tensor) -> list[str]:
        answers = []
        for row in output_ids.tolist():
            if row and row[0] == 0:  # official: drop a leading <unk>/pad 0
                row = row[1:]
            text = self.llama_tokenizer.decode(row, skip_special_tokens=True)
            answers.append(prompting.postprocess_answer(text))
        return answers

    @torch.no_grad()
    def multi_select(
        self,
        images: Tensor,
        texts: Sequence[str],
        answers: Sequence[Sequence[str]],
        num_cand: Sequence[int] | None = None,
    ) -> list[list[int]]:
        """Rank candidates by per-sample loss. answers[c][b]: candidate c of sample b.

        One forward per candidate, as officially: each candidate's loss is normalised by its own padded
        length, so batching all candidates together would change the scores.
        """
        losses = []
        for answer in answers:
            samples = {"image": images, "instruction_input": list(texts), "answer": list(answer)}
            losses.append(self.forward(samples, reduction="none")["loss"].reshape(-1, 1))
        return rank_candidates(torch.cat(losses, dim=-1), num_cand)  # losses (B, C)


MASKED_CANDIDATE_LOSS = 9999.0  # official: padded candidate slots can never win


def rank_candidates(losses: Tensor, num_cand: Sequence[int] | None = None) -> list[list[int]]:
    """losses: (B, C) per-candidate LM losses. Slots at or beyond num_cand[i] get 9999; returns the candidate
    indices of each row sorted by loss, ties in index order (what the official `torch.argsort` gives on CPU)."""
    losses = losses.detach().to(torch.float32).clone()
    if num_cand is not None:
        slot = torch.arange(losses.shape[1], device=losses.device)  # (C,)
        counts = torch.as_tensor(list(num_cand), device=losses.device)  # (B,)
        losses = losses.masked_fill(slot[None, :] >= counts[:, None], MASKED_CANDIDATE_LOSS)
    return torch.argsort(losses, dim=-1, stable=True).tolist()
