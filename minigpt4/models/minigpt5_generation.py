"""MiniGPT-5 generation: official sampling with the 8-voken step (a row that samples `[IMG0]` feeds all eight
vokens at once, and their states become that row's image conditioning), then the image decoder renders one picture
per such row. A mixin of `MiniGPT5` (`minigpt5.py`), which holds the LLM, tokenizer, mapper and image decoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from minigpt4.common.errors import ConfigError
from minigpt4.models.generation import GenerationResult

# official stop words: the two tokenisations of "###" in the Vicuna vocabulary
OFFICIAL_STOP_IDS = ((835,), (2277, 29937))


@dataclass
class VokenTrace:
    """One generation run. sequences: (B, 1 + T) in the official layout (a BOS placeholder first, then the
    sampled ids; the 8-voken step records only [IMG0]); step_states: last-layer states of every LLM call
    [(B, L, D), (B, k, D), ...]; voken_states: (B, 8, D), zero where has_image is False; in_nucleus: per step,
    whether each row's token was inside the top-p set (always True when sampled; a check when forced)."""

    sequences: Tensor
    step_states: list[Tensor]
    voken_states: Tensor
    has_image: Tensor
    finished: Tensor
    lengths: Tensor  # (B,) new ids of each row up to and including its stop
    in_nucleus: list[Tensor] = field(default_factory=list)


class VokenGeneration:
    """generate_answers / generate_from_context / trace_generation / render_images of `MiniGPT5`."""

    def generation_inputs_for(self, prompts: Sequence[str], images: Sequence[Tensor | None] | None = None
                              ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Context embeds (B, L, D) LEFT-padded with zero vectors, attention (B, L) long: BOS + the prompt with
        its `<ImageHere>` replaced (official `predict` with add_special_tokens=False)."""
        ids = [torch.tensor(i, dtype=torch.long) for i in self._ids(prompts)]
        input_ids = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id)
        attention = nn.utils.rnn.pad_sequence([torch.ones_like(i) for i in ids], batch_first=True)
        embeds, atts, _ = self.build_llm_inputs(input_ids, attention, None, images)
        longest = atts.shape[1]
        shift = longest - atts.sum(dim=1)  # (B,) right-padded contexts have no holes: move each row right
        position = torch.arange(longest, device=atts.device)[None, :]
        valid = position >= shift[:, None]  # (B, L)
        source = (position - shift[:, None]).clamp(min=0)
        embeds = torch.gather(embeds, 1, source[..., None].expand_as(embeds))
        atts = valid.long()
        return embeds * atts[..., None].to(embeds.dtype), atts

    @torch.no_grad()
    def trace_generation(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        *,
        max_new_tokens: int = 256,
        do_sample: bool = True,
        top_p: float = 0.9,
        temperature: float = 1.0,
        repetition_penalty: float = 2.0,
        min_length: int = 1,
        force_generation: bool = False,
        stop_words_ids: Sequence[Sequence[int]] | None = OFFICIAL_STOP_IDS,
        generator: torch.Generator | None = None,
        forced_tokens: Tensor | None = None,
    ) -> VokenTrace:
        """Official sampling with the 8-voken step: whenever a row samples `[IMG0]`, its next LLM input is all 8
        voken embeddings at once (positions p..p+7); the first such step gives that row's voken states = [state
        that predicted [IMG0]] + [states at [IMG0]..[IMG6]]. Other rows feed their one token in the same call
        (7 masked slots), so a batch computes what each row alone would. `forced_tokens` (B, T) replaces the
        sampled ids (teacher forcing); `in_nucleus` then says whether each forced id was inside top-p."""
        from transformers import DynamicCache, RepetitionPenaltyLogitsProcessor, TopPLogitsWarper

        device = inputs_embeds.device
        batch = inputs_embeds.shape[0]
        eos = int(self.llama_model.config.eos_token_id if self.llama_tokenizer is None
                  else self.llama_tokenizer.eos_token_id)  # fmt: skip
        img0 = self.first_voken_id
        voken_embeds = self.embed_tokens(torch.tensor(self.voken_ids, device=device))  # (8, D)
        penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty) if repetition_penalty != 1 else None
        nucleus = TopPLogitsWarper(top_p) if top_p < 1 else None
        stops = [torch.tensor(list(s), device=device) for s in (stop_words_ids or [])]
        if forced_tokens is not None:
            max_new_tokens = min(max_new_tokens, forced_tokens.shape[1])

        cache = DynamicCache()
        atts = attention_mask.long()
        positions = (atts.cumsum(dim=1) - 1).clamp(min=0)
        logits, hidden = self.run_llm(inputs_embeds, atts, positions, cache)
        trace = VokenTrace(
            sequences=torch.full((batch, 1), self.bos_token_id, dtype=torch.long, device=device),
            step_states=[hidden],
            voken_states=hidden.new_zeros(batch, self.num_vokens, hidden.shape[-1]),
            has_image=torch.zeros(batch, dtype=torch.bool, device=device),
            finished=torch.zeros(batch, dtype=torch.bool, device=device),
            lengths=torch.zeros(batch, dtype=torch.long, device=device),
        )
        next_logits, prev_state = logits[:, -1].float(), hidden[:, -1]
        for step in range(max_new_tokens):
            scores = next_logits
            if penalty is not None:  # over the placeholder BOS and the recorded ids, as transformers 4.31
                scores = penalty(trace.sequences, scores)
            if trace.sequences.shape[1] < min_length:
                scores[:, eos] = -float("inf")
            if force_generation:  # official: the [IMG0] score becomes 10x the row max until [IMG0] appears
                boost = ~(trace.sequences == img0).any(dim=1)
                scores[boost, img0] = 10 * scores[boost].max(dim=-1).values
            if temperature != 1.0:
                scores = scores / temperature
            if nucleus is not None:
                scores = nucleus(trace.sequences, scores)
            if forced_tokens is not None:
                token = forced_tokens[:, step].to(device)
            elif do_sample:
                token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
            else:
                token = scores.argmax(dim=-1)
            trace.in_nucleus.append(torch.isfinite(scores.gather(1, token[:, None]).squeeze(1)))
            token = torch.where(trace.finished, eos, token)
            trace.sequences = torch.cat([trace.sequences, token[:, None]], dim=1)
            trace.lengths += (~trace.finished).long()
            trace.finished |= self._stopped(trace.sequences, eos, stops)
            if step == max_new_tokens - 1 or bool(trace.finished.all()):
                break
            starts = (token == img0) & ~trace.finished
            width = self.num_vokens if bool(starts.any()) else 1
            step_embeds = self.embed_tokens(token)[:, None].expand(-1, width, -1).clone()  # (B, k, D)
            step_atts = torch.zeros(batch, width, dtype=torch.long, device=device)
            step_atts[:, 0] = 1
            if width > 1:
                step_embeds[starts] = voken_embeds.to(step_embeds.dtype)
                step_atts[starts] = 1
            atts = torch.cat([atts, step_atts], dim=1)
            positions = (atts.cumsum(dim=1) - 1)[:, -width:]
            logits, hidden = self.run_llm(step_embeds, atts, positions, cache)
            trace.step_states.append(hidden)
            last = step_atts.sum(dim=1) - 1  # (B,) the last real input of each row
            rows = torch.arange(batch, device=device)
            first_image = starts & ~trace.has_image
            if bool(first_image.any()):
                states = torch.cat([prev_state[:, None], hidden[:, : self.num_vokens - 1]], dim=1)
                trace.voken_states[first_image] = states[first_image]
                trace.has_image |= first_image
            next_logits, prev_state = logits[rows, last].float(), hidden[rows, last]
        return trace

    @staticmethod
    def _stopped(sequences: Tensor, eos: int, stops: list[Tensor]) -> Tensor:
        done = sequences[:, -1] == eos
        for stop in stops:  # a couple of stop sequences, each compared with the whole batch at once
            if sequences.shape[1] - 1 >= len(stop):
                done |= (sequences[:, -len(stop) :] == stop).all(dim=1)
        return done

    @torch.no_grad()
    def render_images(
        self,
        voken_states: Tensor,
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
        latents: Tensor | None = None,
        generator: torch.Generator | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ):
        """(N, 8, D) voken states -> image_decoder.DecodedImages, classifier-free guidance against the mapped
        zero states (official negative_prompt_embeds). on_step(done, total): after each denoising step."""
        if self.image_decoder is None:
            raise ConfigError("this MiniGPT-5 was built without an image decoder (model.sd_model is empty)")
        conditioning = self.map_vokens(voken_states)
        negative = self.unconditional_feature(1)
        return self.image_decoder.generate(
            conditioning,
            negative,
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps,
            latents=latents,
            generator=generator,
            on_step=on_step,
        )

    def decode_official(self, sequences: Tensor) -> list[str]:
        """Official text_out: the raw ids (placeholder BOS included) decoded with special tokens kept."""
        return [self.llama_tokenizer.decode(row, skip_special_tokens=False) for row in sequences.tolist()]

    def answer_text(self, token_ids: Sequence[int]) -> str:
        """Display text: special tokens (vokens, eos) dropped, `###` removed, whitespace stripped."""
        text = self.llama_tokenizer.decode(list(token_ids), skip_special_tokens=True)
        return text.replace("###", "").strip()

    @torch.no_grad()
    def generate_answers(
        self,
        images: Tensor | Sequence[Tensor | None] | None,
        texts: Sequence[str],
        **options: Any,
    ) -> GenerationResult:
        """Text and images for a batch of prompts (the house interface: images first). images: None, (B, 3, S, S)
        (one per prompt) or per prompt (n, 3, S, S) / None, used at each prompt's `<ImageHere>` in order.
        options: those of `generate_from_context`. Rows that produce `[IMG0]` get one image each."""
        if isinstance(images, Tensor):
            images = list(images[:, None]) if images.ndim == 4 else list(images)
        embeds, atts = self.generation_inputs_for(texts, images)
        return self.generate_from_context(embeds, attention_mask=atts, **options)

    def generate(self, images: Tensor | Sequence[Tensor | None] | None, texts: Sequence[str], **options: Any
                 ) -> list[str]:  # fmt: skip
        """The texts of `generate_answers`."""
        return self.generate_answers(images, texts, **options).texts

    @torch.no_grad()
    def generate_from_context(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        *,
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
        generate_images: bool = True,
        generator: torch.Generator | None = None,
        **sampling: Any,
    ) -> GenerationResult:
        """Answer a ready context (B, L, D) (left-padded when attention_mask is given). Official `generate`
        defaults: sampling top-p 0.9, repetition penalty 2.0, stop at `###`, max 256 new tokens, CFG 7.5 over
        the scheduler's 50 steps. sampling: the text options of `trace_generation` (max_new_tokens, do_sample,
        top_p, temperature, repetition_penalty, min_length, force_generation, stop_words_ids).
        texts: special tokens and `###` removed; token_ids: new ids up to the stop."""
        if attention_mask is None:
            attention_mask = torch.ones(
                inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device
            )
        trace = self.trace_generation(inputs_embeds, attention_mask, generator=generator, **sampling)
        token_ids = [row[1 : 1 + int(n)] for row, n in zip(trace.sequences, trace.lengths)]
        texts = [self.answer_text(ids.tolist()) for ids in token_ids]
        images_out: list[list[Any]] = [[] for _ in range(inputs_embeds.shape[0])]
        if generate_images and bool(trace.has_image.any()) and self.image_decoder is not None:
            rows = trace.has_image.nonzero().flatten().tolist()
            decoded = self.render_images(
                trace.voken_states[rows], guidance_scale, num_inference_steps, generator=generator
            )
            for row, image in zip(rows, decoded.images):
                images_out[row].append(image)
        return GenerationResult(
            texts=texts, token_ids=token_ids, images=images_out, voken_states=trace.voken_states
        )
