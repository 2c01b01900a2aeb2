"""The one generation path every caller uses (evaluation, Python API, quickstart, `Chat`), and candidate ranking
(official `MiniGPTBase.generate` / `multi_select`, and the generate call of the official `Chat`).

Callers ask the model, never `model.llama_model.generate` themselves:
* `generate_answers(images, texts, **options) -> GenerationResult`: a batch of prompts with `<ImageHere>`,
  official batched defaults (greedy, official answer post-processing); `generate` is its official list-of-str form;
* `generate_from_context(inputs_embeds, **generate_kwargs) -> GenerationResult` and its streaming variant
  `stream_from_context(...) -> Iterator[str]`: a ready chat context, with the generate arguments the official
  `Chat` passes (sampling, its stopping criteria); texts are decoded, the caller's template cleans them.
All three reach the LLM through `run_llm_generate`. A model that also answers with images (MiniGPT-5) fills
`GenerationResult.images` / `voken_states` in its own `generate_answers` / `generate_from_context`.

transformers 4.30 (the official runtime) started `generate(inputs_embeds=...)` from a BOS placeholder id that
transformers 5 does not have. We restore its visible effects: the returned ids carry the placeholder column,
`min_length` counts it, and `repetition_penalty` also penalises the BOS logit (`PlaceholderBosPenalty`). One
difference remains, in beam search only: beams that end on EOS are scored alike, but 4.30 divided the score of a
beam cut at max_new_tokens (and its early-stopping estimate) by a length one token longer than transformers 5 does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
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


@dataclass(frozen=True)
class DecodingOptions:
    """How answers are decoded. Each caller starts from its official defaults: `BATCH_DECODING` (the official
    batched `generate`: greedy) or `CHAT_DECODING` (the official `Chat`: sampling, top-p 0.9, penalty 1.05)."""

    max_new_tokens: int = 20
    num_beams: int = 1
    min_length: int = 1
    top_p: float = 0.9
    repetition_penalty: float = 1
    length_penalty: float = 1
    temperature: float = 1
    do_sample: bool = False

    def with_overrides(self, **options: Any) -> DecodingOptions:
        """A copy with `options` set; an unknown name raises TypeError listing the known ones."""
        unknown = sorted(set(options) - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"unknown decoding options {unknown}; known: {[f.name for f in fields(self)]}")
        return replace(self, **options)


BATCH_DECODING = DecodingOptions()
CHAT_DECODING = DecodingOptions(max_new_tokens=300, repetition_penalty=1.05, temperature=1.0, do_sample=True)


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
    def generate_answers(self, images: Tensor, texts: Sequence[str], **options: Any) -> GenerationResult:
        """Batched answers with the official post-processing. images: (B, 3, H, W); texts: B prompts with
        `<ImageHere>`; `options` are those of `generate_ids` (num_beams, max_new_tokens, min_length, top_p,
        repetition_penalty, length_penalty, temperature, do_sample, stop_words_ids).
        token_ids: each row's new ids (the 4.30 BOS placeholder column dropped), EOS and padding included."""
        output_ids = self.generate_ids(images, texts, **options)  # (B, 1 + N)
        return GenerationResult(texts=self.decode_answers(output_ids), token_ids=list(output_ids[:, 1:]))

    def generate(self, images: Tensor, texts: Sequence[str], **options: Any) -> list[str]:
        """Official name and return type: the texts of `generate_answers`."""
        return self.generate_answers(images, texts, **options).texts

    def run_llm_generate(self, **generate_kwargs: Any) -> Tensor:
        """The one call of `llama_model.generate`, under the model's autocast (8-bit / 16-bit on GPU).
        With `inputs_embeds` (B, L, D) it returns only the new ids (B, N). A `repetition_penalty` is applied as
        logits processors (`repetition_penalty_processors`): the 4.30 behaviour, without a warning per call."""
        penalty = generate_kwargs.pop("repetition_penalty", None)
        if penalty is not None and penalty != 1:
            processors = LogitsProcessorList(generate_kwargs.pop("logits_processor", None) or [])
            processors.extend(
                repetition_penalty_processors(
                    penalty, self.llama_tokenizer.bos_token_id, generate_kwargs.get("attention_mask")
                )
            )
            generate_kwargs["logits_processor"] = processors
        with self.maybe_autocast():
            return self.llama_model.generate(**generate_kwargs)

    def generate_from_context(self, inputs_embeds: Tensor, **generate_kwargs: Any) -> GenerationResult:
        """Answer a ready context (the official `Chat` path). inputs_embeds: (B, L, D) from `get_context_emb`;
        generate_kwargs go to the LLM's `generate` as given (sampling, stopping criteria, stop strings).
        texts: each row decoded with `skip_special_tokens`, not post-processed (the chat template decides)."""
        with torch.inference_mode():
            new_ids = self.run_llm_generate(inputs_embeds=inputs_embeds, **generate_kwargs)  # (B, N)
        texts = [self.llama_tokenizer.decode(row, skip_special_tokens=True) for row in new_ids]
        return GenerationResult(texts=texts, token_ids=list(new_ids))

    def stream_from_context(self, inputs_embeds: Tensor, **generate_kwargs: Any) -> Iterator[str]:
        """`generate_from_context` for one row, yielding decoded text pieces as they come. Generation runs in a
        thread (official streaming); an error there is re-raised here instead of leaving the consumer waiting."""
        streamer = TextIteratorStreamer(self.llama_tokenizer, skip_special_tokens=True)
        errors: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self.run_llm_generate(inputs_embeds=inputs_embeds, streamer=streamer, **generate_kwargs)
            except BaseException as exc:  # surfaced to the consumer, which would otherwise wait forever
                errors.append(exc)
                streamer.end()

        threading.Thread(target=generate, daemon=True).start()
        yield from streamer
        if errors:
            raise errors[0]

    @torch.no_grad()
    def generate_ids(
        self,
        images: Tensor,
        texts: Sequence[str],
        stop_words_ids: Sequence[int | Sequence[int]] | None = None,
        **options: Any,
    ) -> Tensor:
        """(B, 1 + new tokens) in the transformers-4.30 layout: a BOS placeholder column, then the new tokens.

        options: fields of `DecodingOptions` over the official batched defaults `BATCH_DECODING` (greedy,
        max_new_tokens 20). `stop_words_ids` is None by default because the official call leaves its stopping
        criteria commented out; given stops (token ids, or id sequences such as [[835], [2277, 29937]]) end a
        row when generated, besides EOS."""
        decoding = BATCH_DECODING.with_overrides(**options)
        embeds, atts = self.generation_inputs(images, texts)
        kwargs: dict[str, Any] = {}
        if (
            decoding.do_sample
        ):  # top_p matters only when sampling; transformers warns if greedy search gets it
            kwargs["top_p"] = decoding.top_p
        kwargs.update(stop_kwargs(stop_words_ids, int(self.llama_tokenizer.eos_token_id)))
        new_tokens = self.run_llm_generate(
            inputs_embeds=embeds,
            attention_mask=atts,
            max_new_tokens=decoding.max_new_tokens,
            num_beams=decoding.num_beams,
            length_penalty=decoding.length_penalty,
            temperature=decoding.temperature,
            do_sample=decoding.do_sample,
            # 4.30 counted its BOS placeholder in min_length: min_length=m means m-1 new tokens
            min_new_tokens=max(int(decoding.min_length) - 1, 0),
            repetition_penalty=decoding.repetition_penalty,
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
