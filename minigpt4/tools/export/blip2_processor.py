"""The exported `Blip2Processor`: our image normalisation, the LLaMA tokenizer with `<image>`, our chat prompt.

transformers' BLIP-2 model puts the image features where the image tokens stand in `input_ids`; its processor
would prepend them (before BOS) when it knows `num_query_tokens`. MiniGPT-4 places the image mid-prompt
(`###Human: <Img><ImageHere></Img> question###Assistant: `), so the processor is saved with
`num_query_tokens=None` and the chat template writes `<Img>` + `<image>` x num_query_tokens + `</Img>` itself.

The tokenizer is transformers' LLaMA tokenizer with `legacy=True` (sentencepiece's `▁` before every piece of
text that follows a special token), which is how our `LegacyLlamaTokenizer` tokenises each prompt segment.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image
from transformers import AutoTokenizer, Blip2Processor
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

from minigpt4.common.errors import CheckpointError
from minigpt4.conversation.templates import IMAGE_PLACEHOLDER, Conversation, SeparatorStyle

IMAGE_TOKEN = "<image>"
TOKENIZER_FILE = "tokenizer.model"
ADDED_TOKEN_FILES = ("added_tokens.json", "special_tokens_map.json")


def image_processor(
    image_size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> BlipImageProcessorPil:
    """PIL bicubic resize to (S, S), /255, normalise: our `blip2_image_eval` step for step."""
    return BlipImageProcessorPil(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        resample=Image.BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(mean),
        image_std=list(std),
        do_convert_rgb=True,
    )


def chat_template(conv: Conversation, num_query_tokens: int) -> str:
    """A Jinja chat template rendering `conv` as `Conversation.get_prompt` does, images as image tokens.

    A message's content is a string or a list of parts (`{"type": "image"}`, `{"type": "text", ...}`) joined by
    one space, as `Chat.upload_img` + `Chat.ask` join `<Img><ImageHere></Img>` and the question.
    """
    if conv.sep_style != SeparatorStyle.SINGLE:
        raise CheckpointError(f"only single-separator templates can be exported (got {conv.sep_style})")
    user, assistant = (json.dumps(role) for role in conv.roles)
    sep, system = json.dumps(conv.sep), json.dumps(conv.system)
    image = json.dumps("<Img>" + IMAGE_TOKEN * num_query_tokens + "</Img>")
    return (
        "{%- macro render(content) -%}"
        "{%- if content is string -%}{{- content -}}"
        "{%- else -%}{%- for part in content -%}"
        "{%- if not loop.first -%}{{- ' ' -}}{%- endif -%}"
        f"{{%- if part['type'] == 'image' -%}}{{{{- {image} -}}}}"
        "{%- else -%}{{- part['text'] -}}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{%- endmacro -%}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{{- render(messages[0]['content']) -}}{%- set turns = messages[1:] -%}"
        f"{{%- else -%}}{{{{- {system} -}}}}{{%- set turns = messages -%}}{{%- endif -%}}"
        f"{{{{- {sep} -}}}}"
        "{%- for message in turns -%}"
        f"{{%- if message['role'] == 'user' -%}}{{{{- {user} -}}}}"
        f"{{%- elif message['role'] == 'assistant' -%}}{{{{- {assistant} -}}}}"
        "{%- else -%}{{- raise_exception('roles are system (first), user and assistant') -}}{%- endif -%}"
        f"{{{{- render(message['content']) -}}}}{{{{- {sep} -}}}}"
        "{%- endfor -%}"
        f"{{%- if add_generation_prompt -%}}{{{{- {assistant} -}}}}{{%- endif -%}}"
    )


def tokenizer_config_for(source_config: dict[str, Any], pad_token: str) -> dict[str, Any]:
    config = {k: v for k, v in source_config.items() if k not in ("tokenizer_class", "legacy", "pad_token")}
    return {**config, "tokenizer_class": "LlamaTokenizer", "legacy": True, "pad_token": pad_token}


def build_processor(
    tokenizer_dir: Path,
    our_tokenizer: Any,
    conv: Conversation,
    num_query_tokens: int,
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> Blip2Processor:
    """transformers' LLaMA tokenizer for `tokenizer_dir` + `<image>` (id len(vocab)), our pad, template, images."""
    if not (tokenizer_dir / TOKENIZER_FILE).is_file():
        raise CheckpointError(
            f"{tokenizer_dir}: no {TOKENIZER_FILE}; the exported tokenizer is built from it"
        )
    source_config_path = tokenizer_dir / "tokenizer_config.json"
    source_config = json.loads(source_config_path.read_text()) if source_config_path.is_file() else {}
    # our pad "$$" is ordinary text for LLaMA (its id is <unk>'s); only a real vocabulary piece can travel
    pad_id = int(our_tokenizer.pad_token_id)
    pad_token = our_tokenizer.convert_ids_to_tokens(pad_id)
    with tempfile.TemporaryDirectory() as staging:
        shutil.copy2(tokenizer_dir / TOKENIZER_FILE, Path(staging) / TOKENIZER_FILE)
        for name in ADDED_TOKEN_FILES:  # e.g. Vicuna v0's [PAD] (id 32000): the image token comes after it
            if (tokenizer_dir / name).is_file():
                shutil.copy2(tokenizer_dir / name, Path(staging) / name)
        (Path(staging) / "tokenizer_config.json").write_text(
            json.dumps(tokenizer_config_for(source_config, pad_token))
        )
        tokenizer = AutoTokenizer.from_pretrained(staging)
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) != len(our_tokenizer):
        raise CheckpointError(
            f"{tokenizer_dir}: transformers' tokenizer has {len(tokenizer) - 1} tokens, ours {len(our_tokenizer)}; "
            "the image token must take the first free id"
        )
    processor = Blip2Processor(image_processor(image_size, mean, std), tokenizer, num_query_tokens=None)
    # Blip2Processor.__init__ drops a `chat_template` argument and so does its from_pretrained (transformers
    # 5.25): the template travels with the tokenizer, and with the processor for versions that read it
    tokenizer.chat_template = processor.chat_template = chat_template(conv, num_query_tokens)
    return processor


def save_processor(processor: Blip2Processor, out_dir: Path) -> None:
    """`save_pretrained`, then pin `legacy: true`, which transformers 5.25 leaves out of tokenizer_config.json
    (without it the reloaded tokenizer puts `▁` only before the first piece of text)."""
    processor.save_pretrained(str(out_dir))
    path = out_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["legacy"] = True
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def image_token_id(processor: Blip2Processor) -> int:
    return int(processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))


def our_prompt_ids(our_tokenizer: Any, prompt: str, image_id: int, num_query_tokens: int) -> list[int]:
    """Ids of our chat layout: BOS + first segment, image tokens, later segments (each tokenised alone)."""
    segments = prompt.split(IMAGE_PLACEHOLDER)
    ids = our_tokenizer(segments[0], add_special_tokens=True).input_ids
    for segment in segments[1:]:
        ids += [image_id] * num_query_tokens + our_tokenizer(segment, add_special_tokens=False).input_ids
    return ids


def check_processor(
    processor: Blip2Processor, our_tokenizer: Any, conv: Conversation, num_query_tokens: int
) -> None:
    """The template renders our prompt and the tokenizer gives our ids, on a two-turn sample with one image."""
    sample = conv.copy()
    sample.append_message(conv.roles[0], "<Img><ImageHere></Img> What is in this image?")
    sample.append_message(conv.roles[1], "A cat on a mat.")
    sample.append_message(conv.roles[0], "And its colour?")
    sample.append_message(conv.roles[1], None)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in this image?"}]},
        {"role": "assistant", "content": "A cat on a mat."},
        {"role": "user", "content": [{"type": "text", "text": "And its colour?"}]},
    ]
    rendered = processor.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image_id = image_token_id(processor)
    expected = sample.get_prompt().replace(IMAGE_PLACEHOLDER, IMAGE_TOKEN * num_query_tokens)
    if rendered != expected:
        raise CheckpointError(f"the exported chat template renders {rendered!r}, expected {expected!r}")
    got = processor.tokenizer(rendered).input_ids
    want = our_prompt_ids(our_tokenizer, sample.get_prompt(), image_id, num_query_tokens)
    if got != want:
        raise CheckpointError(
            f"the exported tokenizer does not reproduce our prompt ids (first difference at position "
            f"{next(i for i, (a, b) in enumerate(zip([*got, -1], [*want, -2])) if a != b)})"
        )
