"""The LLaMA tokenizer must give the ids of transformers 4.30's slow tokenizer (the official one)."""

from __future__ import annotations

import json

import pytest
import sentencepiece as spm

from minigpt4.models.tokenizer import load_llama_tokenizer

VARIANTS = ["minigpt4_vicuna0", "minigpt4_llama2", "minigpt_v2"]


@pytest.fixture(scope="module")
def tiny(repo_root):
    path = repo_root / "minigpt4" / "assets" / "tiny_llama"
    return load_llama_tokenizer(str(path)), spm.SentencePieceProcessor(
        model_file=str(path / "tokenizer.model")
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_fixture_tokenisation_tables(parity_dir, variant):
    folder = parity_dir / "models" / variant
    table = json.loads((folder / "expected.json").read_text())["tokenization"]
    tok = load_llama_tokenizer(str(folder / "tokenizer"))
    assert tok.pad_token == table["pad_token"] and tok.pad_token_id == table["pad_token_id"]
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (
        table["bos_token_id"],
        table["eos_token_id"],
        table["unk_token_id"],
    )
    for flag in (False, True):
        for text, ids in table[f"add_special_tokens_{flag}"].items():
            assert tok(text, add_special_tokens=flag).input_ids == ids, text


def test_text_after_a_literal_special_token_gets_the_dummy_prefix(tiny):
    tok, sp = tiny
    for text, chunks in [
        ("<s>[INST] hi [/INST]", ["[INST] hi [/INST]"]),
        ("a red circle</s>b", ["a red circle", "b"]),
        ("x <unk> y", ["x ", " y"]),
    ]:
        special = next(t for t in ("<s>", "</s>", "<unk>") if t in text)
        expected = []
        if text.startswith(special):
            expected.append(tok.convert_tokens_to_ids(special))
            expected += sp.encode(chunks[0])
        else:
            expected += [*sp.encode(chunks[0]), tok.convert_tokens_to_ids(special), *sp.encode(chunks[1])]
        assert tok(text, add_special_tokens=False).input_ids == expected, text


def test_whitespace_around_special_tokens_is_kept(tiny):
    tok, sp = tiny
    got = tok("a </s> b", add_special_tokens=False).input_ids
    assert got == [*sp.encode("a "), 2, *sp.encode(" b")]


def test_pad_token_set_later_is_not_a_split_point(tiny):
    tok, sp = tiny
    assert tok.pad_token == "$$" and tok.pad_token_id == sp.piece_to_id("$$") == 3
    assert tok("a$$b", add_special_tokens=False).input_ids == sp.encode("a$$b")


def test_unknown_pad_piece_maps_to_unk_like_the_slow_tokenizer(repo_root):
    tok = load_llama_tokenizer(str(repo_root / "minigpt4" / "assets" / "tiny_llama"), pad_token="@@zq")
    assert tok.pad_token_id == 0


def test_bos_added_once_and_right_padding_with_truncation(tiny):
    tok, sp = tiny
    assert tok("a red circle").input_ids == [1, *sp.encode("a red circle")]
    batch = tok(["a red circle###", "blue"], padding="longest", truncation=True, max_length=3,
                add_special_tokens=False, return_tensors="pt")  # fmt: skip
    assert tok.padding_side == "right"
    assert batch.input_ids[0].tolist() == sp.encode("a red circle###")[:3]
    assert batch.input_ids[1].tolist()[-1] == tok.pad_token_id
    assert batch.attention_mask[1].tolist()[-1] == 0


def test_decode_like_the_slow_tokenizer(tiny):
    tok, sp = tiny
    body = sp.encode("a red circle.")
    ids = [1, *body, 2, 3, 0]
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle."
    assert tok.decode(ids) == "<s> a red circle.</s>$$<unk>"


def test_shapes_world_vocabulary_is_covered(tiny):
    tok, sp = tiny
    for text in ["a purple hexagon", "{<12><34><56><78>}", "<p>a red star</p>", "[grounding] [identify]",
                 "###Human: hi ###Assistant: ", "[INST] what [/INST]"]:  # fmt: skip
        assert 0 not in tok(text, add_special_tokens=False).input_ids, text  # no <unk>
    assert [sp.id_to_piece(i) for i in tok("12", add_special_tokens=False).input_ids][-2:] == ["1", "2"]
