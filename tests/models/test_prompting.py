"""Pure prompt-layout functions against hand-made cases and naive (official-style) loops."""

from __future__ import annotations

import pytest
import torch

from minigpt4.common.errors import DataError
from minigpt4.models import prompting
from minigpt4.models.prompting import IGNORE_INDEX

PAD = 3


def test_split_and_template():
    assert prompting.split_image_prompt("<Img><ImageHere></Img> hi") == ["<Img>", "</Img> hi"]
    assert prompting.split_image_prompt("a<ImageHere>b<ImageHere>") == ["a", "b", ""]
    assert prompting.apply_template("[INST] {} [/INST]", ["x", "y "]) == [
        "[INST] x [/INST]",
        "[INST] y  [/INST]",
    ]


def test_load_prompt_list_keeps_placeholder_lines(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("<Img><ImageHere></Img> A.\nno image here\n<Img><ImageHere></Img> B.\n")
    got = prompting.load_prompt_list(path, "###Human: {} ###Assistant: ")
    assert got == [
        "###Human: <Img><ImageHere></Img> A. ###Assistant: ",
        "###Human: <Img><ImageHere></Img> B. ###Assistant: ",
    ]


def test_shipped_alignment_prompts_are_the_four_official_lines(repo_root):
    lines = (repo_root / "minigpt4" / "prompts" / "alignment.txt").read_text().splitlines()
    assert lines == [
        "<Img><ImageHere></Img> Describe this image in detail.",
        "<Img><ImageHere></Img> Take a look at this image and describe what you notice.",
        "<Img><ImageHere></Img> Please provide a detailed description of the picture.",
        "<Img><ImageHere></Img> Could you describe the contents of this image for me?",
    ]


def test_context_layout_right_padding_and_image_slots():
    # sample 0: [5, 6] img [7]; sample 1: [8] img [] ; 2 image tokens per image
    ids, img, att = prompting.context_layout([[[5, 6], [7]], [[8], []]], 2, 2, PAD)
    assert ids.tolist() == [[5, 6, PAD, PAD, 7], [8, PAD, PAD, PAD, PAD]]
    assert img.tolist() == [[-1, -1, 0, 1, -1], [-1, 2, 3, -1, -1]]
    assert att.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert att.dtype == torch.int32


def test_context_layout_several_images_cap_and_left_pad():
    segments = [[[1], [2], [3]], [[4], [5]]]  # 2 images for sample 0, 1 for sample 1, 1 token each
    ids, img, att = prompting.context_layout(segments, 2, 1, PAD, max_len=4)
    assert ids.tolist() == [[1, PAD, 2, PAD], [4, PAD, 5, PAD]]
    assert img.tolist() == [[-1, 0, -1, 1], [-1, 2, -1, -1]]
    assert att.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    ids, img, att = prompting.context_layout([[[1, 2]], [[3]]], 0, 0, PAD, left_pad=True)
    assert ids.tolist() == [[1, 2], [PAD, 3]] and att.tolist() == [[1, 1], [0, 1]]


def test_context_layout_rejects_more_placeholders_than_images():
    with pytest.raises(DataError, match="placeholder"):
        prompting.context_layout([[[1], [2], [3]]], 2, 2, PAD)


def test_splice_image_embeds_places_tokens():
    text = torch.zeros(1, 4, 2)
    image = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    index = torch.tensor([[-1, 1, 0, -1]])
    got = prompting.splice_image_embeds(text, index, image)
    assert got[0].tolist() == [[0, 0], [2, 2], [1, 1], [0, 0]]


def test_answer_targets_masks_pad_id_even_when_genuine():
    ids = torch.tensor([[10, PAD, 11], [PAD, PAD, PAD]])
    assert prompting.answer_targets(ids, PAD).tolist() == [[10, -100, 11], [-100, -100, -100]]


def test_conversation_ids_masks_questions_and_truncates():
    questions = [[[1, 20, 21]], []]  # sample 0 has two turns, sample 1 one
    answers = [[[30, 2], [31, PAD, 2]], [[40, 41, 42, 43, 44, 45, 2]]]
    ids, att, tgt = prompting.conversation_ids(questions, answers, max_txt_len=6, pad_id=PAD)
    assert ids.tolist() == [[30, 2, 1, 20, 21, 31], [40, 41, 42, 43, 44, 45]]
    assert tgt.tolist() == [[30, 2, -100, -100, -100, 31], [40, 41, 42, 43, 44, 45]]
    ids, att, tgt = prompting.conversation_ids(questions, answers, max_txt_len=99, pad_id=PAD)
    assert ids.shape == (2, 8)
    # a genuine "$$" (pad id) in an answer keeps its target but gets attention 0 (official quirk)
    assert tgt[0, 6].item() == PAD and att[0, 6].item() == 0
    assert tgt[1, 7].item() == IGNORE_INDEX and att[1, 7].item() == 0


def test_conversation_turn_mismatch_is_an_error():
    with pytest.raises(DataError, match="turns"):
        prompting.conversation_ids([[[1]]], [[[2]]], 8, PAD)


def _official_concat(cond, cond_atts, answer):
    rows = []
    for i in range(cond.shape[0]):
        n = int(cond_atts[i].sum())
        rows.append(torch.cat([cond[i][:n], answer[i], cond[i][n:]]))
    return torch.stack(rows)


def test_concat_gather_index_equals_official_loop():
    generator = torch.Generator().manual_seed(0)
    cond = torch.randn(3, 5, 2, generator=generator)
    cond_atts = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    answer = torch.randn(3, 4, 2, generator=generator)
    index, lengths = prompting.concat_gather_index(cond_atts, 4)
    got = prompting.gather_rows(torch.cat([cond, answer], 1), index)
    assert torch.equal(got, _official_concat(cond, cond_atts, answer))
    assert lengths.tolist() == [3, 5, 1]


def test_training_targets_shift_for_bos():
    cond_atts = torch.tensor([[1, 1, 0], [1, 1, 1]])
    part = torch.tensor([[7, 8], [9, -100]])
    got = prompting.training_targets(cond_atts, part)
    assert got.tolist() == [[-100, -100, -100, 7, 8, -100], [-100, -100, -100, -100, 9, -100]]


@pytest.mark.parametrize(
    ("decoded", "answer"),
    [
        ("  hello</s>junk", "hello"),
        ("<s>[INST] q [/INST] a box ", "a box"),
        ("x [/INST] y [/INST] z", "z"),
    ],
)
def test_postprocess_answer(decoded, answer):
    assert prompting.postprocess_answer(decoded) == answer
