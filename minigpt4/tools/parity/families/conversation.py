"""Parity family `conversation`: templates, prompts, `Chat` steps, answer cleaning and stop criteria.

Fixture: `functions/conversation.json` (see its README). The `Chat` cases run our `Chat` over a stub model whose
`get_context_emb` is our model's real one (`MiniGPTBase.get_context_emb`) fed by a recording one-id-per-character
tokenizer, as the fixture's stub: the prompt, the tokenized segments (BOS on the first only), the context length
(characters + BOS + 32 per image), the messages and the generation kwargs are all ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from minigpt4.conversation.chat import Chat, StoppingCriteriaSub
from minigpt4.conversation.templates import TEMPLATES, Conversation
from minigpt4.models.minigpt_base import MiniGPTBase
from minigpt4.tools.parity.report import FamilyReport

# The fixture's stub model: one token per character, BOS on the first segment, 32 image tokens of width 4.
STUB_IMAGE_TOKENS = 32
STUB_WIDTH = 4


def _template(name: str, system_override: str | None) -> Conversation:
    conv = TEMPLATES[name].copy()
    if system_override is not None:
        conv.system = system_override
    return conv


def _template_fields(conv: Conversation) -> dict[str, Any]:
    return {
        "system": conv.system,
        "roles": list(conv.roles),
        "offset": conv.offset,
        "sep_style": conv.sep_style.name,
        "sep": conv.sep,
        "sep2": conv.sep2,
    }


class _RecordingTokenizer:
    """One id per character (BOS first when asked), as the fixture's stub; records every text it tokenizes."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.decoded = ""

    def __call__(
        self, texts: str | list[str], add_special_tokens: bool = True, **kwargs: Any
    ) -> SimpleNamespace:
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.calls += [{"segment": text, "add_special_tokens": add_special_tokens} for text in texts]
        bos = [self.bos_token_id] if add_special_tokens else []
        return SimpleNamespace(input_ids=[bos + [3 + ord(ch) % 64 for ch in text] for text in texts])

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.decoded


class _StubModel:
    """Our model's real `get_context_emb` (segment split, BOS on the first segment, image splice) over a
    recording tokenizer and zero embeddings of width 4, so the segments and the context length are checked."""

    device = torch.device("cpu")
    pad_token_id = 0
    get_context_emb_impl = staticmethod(MiniGPTBase.get_context_emb)
    _ids = MiniGPTBase._ids
    # Chat answers through the model's generation interface: the real methods, over the stub generator
    generate_from_context = MiniGPTBase.generate_from_context
    run_llm_generate = MiniGPTBase.run_llm_generate
    maybe_autocast = MiniGPTBase.maybe_autocast

    def __init__(self) -> None:
        self.llama_tokenizer = _RecordingTokenizer()
        self.prompts: list[str] = []

    def get_context_emb(self, prompt: str, img_list: list) -> torch.Tensor:
        self.prompts.append(prompt)
        self.llama_tokenizer.calls.clear()
        return self.get_context_emb_impl(self, prompt, img_list)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*token_ids.shape, STUB_WIDTH)

    def encode_img(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(1, STUB_IMAGE_TOKENS, STUB_WIDTH), torch.ones(1, STUB_IMAGE_TOKENS)


def _check_templates(report: FamilyReport, templates: dict[str, Any]) -> None:
    for name, expected in templates.items():
        if name not in TEMPLATES:
            report.record(False, f"template {name}", expected, "missing")
            continue
        report.exact(f"template {name}", expected, _template_fields(TEMPLATES[name]))


def _check_prompts(report: FamilyReport, cases: list[dict[str, Any]]) -> None:
    for case in cases:
        what = f"get_prompt {case['template']}/{case['sequence']}/system={case['system_override']!r}"
        conv = _template(case["template"], case["system_override"])
        for role_index, message in case["messages"]:
            conv.append_message(conv.roles[role_index], message)
        report.exact(what, case["prompt"], conv.get_prompt())
        report.exact(what + " to_gradio_chatbot", case["to_gradio_chatbot"], conv.to_gradio_chatbot())


def _check_chat(report: FamilyReport, cases: list[dict[str, Any]]) -> None:
    for case_index, case in enumerate(cases):
        model = _StubModel()
        chat = Chat(model, vis_processor=lambda image: torch.zeros(3, 4, 4), device="cpu")
        conv = _template(case["template"], None)
        img_list: list = []
        for step_index, step in enumerate(case["steps"]):
            what = f"chat case {case_index} ({case['template']}) step {step_index} {step['op']}"
            if step["op"] == "upload_img":
                returned = chat.upload_img(torch.zeros(1, 3, 4, 4), conv, img_list)
                report.exact(what + " return", step["return"], returned)
                chat.encode_img(img_list)
            elif step["op"] == "ask":
                chat.ask(step["text"], conv)
            elif step["op"] == "answer_prepare":
                kwargs = chat.answer_prepare(conv, img_list)
                prompt = model.prompts[-1]
                report.exact(what + " prompt", step["prompt_passed_to_model"], prompt)
                report.exact(what + " segments", step["tokenizer_segments"], model.llama_tokenizer.calls)
                expected_kwargs = step["generation_kwargs"]
                got = {k: kwargs.get(k) for k in expected_kwargs}
                got["inputs_embeds"] = list(kwargs["inputs_embeds"].shape)
                report.exact(what + " generation kwargs", expected_kwargs, got)
            elif step["op"] == "set_answer":
                # as Chat.answer does after decoding
                conv.messages[-1][1] = step["text"]
                report.exact(what + " prompt after", step["prompt_after"], conv.get_prompt())
                continue
            else:
                report.record(False, what, "a known op", step["op"])
                continue
            if "messages" in step:
                report.exact(what + " messages", step["messages"], [list(m) for m in conv.messages])


def _check_answer_postprocess(
    report: FamilyReport, cases: list[dict[str, Any]], template: Conversation
) -> None:
    for index, case in enumerate(cases):
        model = _StubModel()
        model.llama_tokenizer.decoded = case["decoded"]
        model.llama_model = _StubGenerator()
        chat = Chat(model, vis_processor=lambda image: image, device="cpu")
        conv = template.copy()
        conv.append_message(conv.roles[0], "<Img><ImageHere></Img> question")
        text, _ = chat.answer(conv, [torch.zeros(1, STUB_IMAGE_TOKENS, STUB_WIDTH)])
        report.exact(f"answer_postprocess {index} answer", case["answer"], text)
        report.exact(f"answer_postprocess {index} last_message", case["last_message"], conv.messages[-1][1])


class _StubGenerator:
    def generate(self, **kwargs) -> torch.Tensor:
        return torch.zeros(1, 3, dtype=torch.long)


def _check_prepare_texts(report: FamilyReport, cases: list[dict[str, Any]]) -> None:
    from minigpt4.conversation.templates import prepare_texts

    for case in cases:
        conv = _template(case["template"], case["system_override"])
        what = f"prepare_texts {case['template']}/system={case['system_override']!r}"
        report.exact(what, case["output"], prepare_texts(case["texts"], conv))


def _check_stopping(report: FamilyReport, cases: list[dict[str, Any]]) -> None:
    for index, case in enumerate(cases):
        criterion = StoppingCriteriaSub(stops=case["stops"])
        got = criterion(torch.tensor(case["input_ids"]), None)
        report.exact(
            f"stopping_criteria {index} stops={case['stops']} ids={case['input_ids']}", case["stop"], got
        )


def _check_stop_words(report: FamilyReport, settings: dict[str, Any]) -> None:
    model = _StubModel()
    chat = Chat(model, vis_processor=lambda image: image, device="cpu")
    got = [stop.tolist() for stop in chat.stopping_criteria[0].stops]
    report.exact("Chat default stop words", settings["Chat_default_stop_words_ids"], got)


def check(path: Path) -> FamilyReport:
    data = json.loads(Path(path).read_text())
    report = FamilyReport("conversation")
    _check_templates(report, data.get("templates", {}))
    _check_prompts(report, data.get("get_prompt_cases", []))
    _check_chat(report, data.get("chat_cases", []))
    _check_answer_postprocess(
        report, data.get("answer_postprocess_cases", []), TEMPLATES["CONV_VISION_Vicuna0"]
    )
    _check_prepare_texts(report, data.get("prepare_texts_cases", []))
    _check_stopping(report, data.get("stopping_criteria_cases", []))
    if "stop_word_settings" in data:
        _check_stop_words(report, data["stop_word_settings"])
    return report
