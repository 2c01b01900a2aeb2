"""The chat-decoding fast paths answer exactly as the slow ones: the prefiltered stop-string criterion as
transformers' StopStringCriteria, the tokenizer's table decode as convert_ids_to_tokens, the batched streamer's
pieces concatenate to the whole answer."""

from __future__ import annotations

import random

import torch
from transformers import StopStringCriteria

from minigpt4.models.generation import BatchedTextStreamer, PrefilteredStopStrings
from tests.conversation.tiny import tiny_parts


def test_prefiltered_stop_strings_match_the_full_criterion():
    model, _ = tiny_parts("minigpt4", "tiny_vicuna0")
    tokenizer = model.llama_tokenizer
    full = StopStringCriteria(tokenizer, ["###", "</s>"])
    fast = PrefilteredStopStrings(tokenizer, ["###", "</s>"])
    hashes = tokenizer("### ## # a###", add_special_tokens=False)["input_ids"]
    rng = random.Random(0)
    for _ in range(300):
        rows = [[rng.choice([*hashes, rng.randrange(len(tokenizer))]) for _ in range(6)] for _ in range(3)]
        ids = torch.tensor(rows)
        assert torch.equal(fast(ids, None), full(ids, None))


def test_table_decode_matches_the_per_id_path():
    model, _ = tiny_parts("minigpt4", "tiny_vicuna0")
    tokenizer = model.llama_tokenizer
    rng = random.Random(1)
    for _ in range(300):
        ids = [rng.randrange(len(tokenizer)) for _ in range(rng.randrange(0, 30))]
        for skip in (False, True):
            slow = tokenizer._join_added_tokens(
                tokenizer.convert_ids_to_tokens(ids, skip_special_tokens=skip)
            )
            assert tokenizer.decode(ids, skip_special_tokens=skip) == slow


def test_batched_streamer_pieces_join_to_the_answer():
    model, _ = tiny_parts("minigpt4", "tiny_vicuna0")
    tokenizer = model.llama_tokenizer
    ids = tokenizer("a red circle on the left\nand two blue squares", add_special_tokens=False)["input_ids"]
    streamer = BatchedTextStreamer(tokenizer, min_interval_s=0.0, skip_special_tokens=True)
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    pieces = list(streamer)
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)
    assert all(pieces)
