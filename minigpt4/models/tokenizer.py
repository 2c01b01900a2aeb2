"""The LLaMA tokenizer as the official code saw it: transformers 4.30's slow sentencepiece `LlamaTokenizer`.

transformers 5 only has the fast (Rust) LLaMA tokenizer. It differs from 4.30 on text that follows a literal
special token: 4.30 splits the text on `<s>`, `</s>`, `<unk>` and encodes every remaining piece of text with
sentencepiece on its own, so each piece gets sentencepiece's dummy-prefix `▁` (`"<s>[INST]"` -> `[1, "▁[", ...]`);
transformers 5 gives `[1, "[", ...]`. MiniGPT-v2 conversations and Llama-2 prompts contain literal `<s>`/`</s>`,
so we reimplement the 4.30 rules here:

* encode: split on the special tokens known when the tokenizer was loaded (longest match first; `<s>`, `</s>`,
  `<unk>` are AddedToken(lstrip=False, rstrip=False), so no whitespace is eaten around them), then
  `sp.encode(piece)` for every non-empty piece; `add_special_tokens=True` prepends BOS (and EOS if asked).
  A pad token assigned afterwards (`tokenizer.pad_token = "$$"`, as `init_llm` does) is NOT a split point,
  exactly as in 4.30: `"$$"` stays ordinary text for sentencepiece.
* decode: drop special ids when asked, sentencepiece-decode runs of ordinary pieces and put special tokens
  between them with a space before (4.30 `convert_tokens_to_string`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from transformers.tokenization_utils_sentencepiece import SentencePieceBackend


class LegacyLlamaTokenizer(SentencePieceBackend):
    """A slow sentencepiece LLaMA tokenizer with transformers-4.30 encode/decode rules; the usual HF call API."""

    vocab_files_names: ClassVar[dict[str, str]] = {"vocab_file": "tokenizer.model"}
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str | None = None,
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        clean_up_tokenization_spaces: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("legacy", None)
        kwargs.pop("tokenizer_class", None)
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        super().__init__(
            vocab_file=vocab_file,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            legacy=True,  # keep sentencepiece's dummy prefix on every piece
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )
        self.padding_side = "right"  # 4.30 slow LlamaTokenizer default (transformers 5 fast default: left)
        # Split points are frozen now, like 4.30's `unique_no_split_tokens` after from_pretrained.
        self._split_tokens = sorted(
            {str(t) for t in (unk_token, bos_token, eos_token, pad_token) if t is not None}
            | set(self._added_tokens_encoder),
            key=len,
            reverse=True,
        )
        self._split_pattern = re.compile("(" + "|".join(re.escape(t) for t in self._split_tokens) + ")")
        self._stripping_tokens: set[str] = set()  # added later as plain strings: they eat whitespace

    def add_stripping_special_tokens(self, tokens: list[str]) -> list[int]:
        """Add `tokens` as additional special tokens the way 4.30/4.31 did for plain strings: each becomes one id
        (appended after the vocabulary, in order), a split point, and strips the whitespace on both sides of it
        (`" grass [IMG0]"` -> `"grass"`, `"[IMG0]"`); decode puts a space between them and the text around.
        Returns their ids."""
        self.add_special_tokens(
            {"additional_special_tokens": list(tokens)}, replace_extra_special_tokens=False
        )
        self._stripping_tokens |= set(tokens)
        self._split_tokens = sorted(set(self._split_tokens) | set(tokens), key=len, reverse=True)
        self._split_pattern = re.compile("(" + "|".join(re.escape(t) for t in self._split_tokens) + ")")
        return [self._added_tokens_encoder[t] for t in tokens]

    # -- encode ------------------------------------------------------------------------

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        chunks = self._split_pattern.split(text)  # text, token, text, token, ..., text
        for i in range(1, len(chunks), 2):
            if chunks[i] in self._stripping_tokens:
                chunks[i - 1] = chunks[i - 1].rstrip()
                chunks[i + 1] = chunks[i + 1].lstrip()
        pieces: list[str] = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self._split_tokens:
                pieces.append(chunk)
            else:
                pieces.extend(self.sp_model.encode(chunk, out_type=str))
        return pieces

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._piece_id(tokens)
        return [self._piece_id(t) for t in tokens]

    def _piece_id(self, token: str) -> int:
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self.sp_model.piece_to_id(token)

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        output = bos + token_ids_0 + eos
        if token_ids_1 is not None:
            output = output + bos + token_ids_1 + eos
        return output

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        if already_has_special_tokens:
            special = set(self.all_special_ids)
            return [int(i in special) for i in token_ids_0]
        bos = [1] if self.add_bos_token else []
        eos = [1] if self.add_eos_token else []
        mask = bos + [0] * len(token_ids_0) + eos
        if token_ids_1 is not None:
            mask = mask + bos + [0] * len(token_ids_1) + eos
        return mask

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return (int(self.add_bos_token) + int(self.add_eos_token)) * (2 if pair else 1)

    # -- decode ------------------------------------------------------------------------

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """4.30 LlamaTokenizer: sentencepiece-decode ordinary runs; special tokens verbatim, a space before each."""
        special = set(self.all_special_tokens)
        run: list[str] = []
        out = ""
        prev_is_special = False
        for i, token in enumerate(tokens):
            if token in special:
                if not prev_is_special and i != 0:
                    out += " "
                out += self.sp_model.decode(run) + token
                prev_is_special = True
                run = []
            else:
                run.append(token)
                prev_is_special = False
        return out + self.sp_model.decode(run)

    def _decode(
        self,
        token_ids: int | list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> str:
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        tokens = self._ids_to_tokens(list(token_ids), skip_special_tokens)
        text = self._join_added_tokens(tokens)
        cleanup = (
            self.clean_up_tokenization_spaces
            if clean_up_tokenization_spaces is None
            else clean_up_tokenization_spaces
        )
        return self.clean_up_tokenization(text) if cleanup else text

    def _ids_to_tokens(self, ids: list[int], skip_special_tokens: bool) -> list[str]:
        """`convert_ids_to_tokens` from a table built once per vocabulary and special-token set: streaming
        decodes the growing answer at every token, and the per-id Python path costs ~2.5 us an id."""
        special = self.all_special_ids  # re-read: a pad token set after loading (`"$$"`) is special too
        key = (len(self), tuple(special))
        if getattr(self, "_token_table_key", None) != key:
            self._token_table = self.convert_ids_to_tokens(list(range(len(self))))
            self._special_id_set = set(special)
            self._token_table_key = key
        table = self._token_table
        if ids and (min(ids) < 0 or max(ids) >= len(table)):  # out of range: the general path (and its error)
            return self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        if skip_special_tokens:
            return [table[i] for i in ids if i not in self._special_id_set]
        return [table[i] for i in ids]

    def _join_added_tokens(self, tokens: list[str]) -> str:
        """4.30/4.31 `_decode`: tokens added after loading stand alone, joined to the text runs with a space."""
        if not self._stripping_tokens:
            return self.convert_tokens_to_string(tokens)
        parts: list[str] = []
        run: list[str] = []
        for token in tokens:
            if token in self._stripping_tokens:
                if run:
                    parts.append(self.convert_tokens_to_string(run))
                    run = []
                parts.append(token)
            else:
                run.append(token)
        if run:
            parts.append(self.convert_tokens_to_string(run))
        return " ".join(parts)


def load_llama_tokenizer(
    path: str, pad_token: str = "$$", padding_side: str = "right"
) -> LegacyLlamaTokenizer:
    """`init_llm`'s tokenizer: the slow LLaMA tokenizer of `path` with `pad_token="$$"` and right padding."""
    tokenizer = LegacyLlamaTokenizer.from_pretrained(path)
    tokenizer.pad_token = pad_token
    tokenizer.padding_side = padding_side
    return tokenizer
