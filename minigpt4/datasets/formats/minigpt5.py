"""What the three MiniGPT-5 formats share: records, tokenisation with voken label masking, image loading,
the collator, and the count of skipped rows (official `dataloader.py`: `CC3MDataset.__getitem__`,
`DataCollator`; spec `minigpt5_anatomy.md` §3).

A format reader (`cc3m_tsv.py`, `vist.py`, `mmdialog.py`) turns its files into `Minigpt5Record`s once, at build
time; `Minigpt5Dataset[i]` turns one record into a `Minigpt5Sample`:

* source and target tokenised **separately**, `add_special_tokens=False` (the model prepends the one BOS),
  each cut at `max_length` tokens (official: the tokenizer's `model_max_length`, `truncation=True`);
  `input_ids = source + target`, labels -100 on the source, and after the first `[IMG0]` the labels of
  `[IMG1]`..`[IMG6]` are -100 too (official quirk: `[IMG0]`, `[IMG7]` and what follows stay supervised);
* input images through the input processor; a sample without one gets the processed black image;
* the output image squared with white (`expand2square`) then through the output processor; none gives zeros.

The collator pads `input_ids` with the pad id (official: eos), `labels` with -100, `attention_mask` with 0;
input images stay a per-sample list, output images are stacked.

The tokenizer is given, never loaded here (datasets sit below models): it must already hold the MiniGPT-5
tokens (`[IMG0]`..`[IMG7]`, `<ImageHere>`), as `models.vokens.add_voken_tokens` leaves the model's tokenizer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from minigpt4.common.errors import ConfigError, DataError
from minigpt4.datasets.files import open_rgb
from minigpt4.processors.image import (
    WHITE,
    Minigpt5ImageProcessor,
    Minigpt5InputImageProcessor,
    Minigpt5OutputImageProcessor,
    expand2square,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
NUM_VOKENS = 8
VOKENS = tuple(f"[IMG{i}]" for i in range(NUM_VOKENS))
VOKEN_TEXT = "".join(VOKENS)  # official ALL_IMG_TOKENS_STR: the eight vokens, no spaces
IMAGE_SLOT = "<Img><ImageHere></Img>"
GENERATION_TARGET = f"{VOKEN_TEXT} ###"
MAX_LOAD_RETRIES = 10  # official MMDialog: up to 10 other indices when an item fails to load

Chooser = Callable[[Sequence[str]], str]


@dataclass(frozen=True, slots=True)
class Minigpt5Record:
    """One official sample before loading. Image paths are absolute (official: joined onto DATAFOLDER);
    `input_images` is `(None,)` when the prompt has no `<ImageHere>` (official `[None]`)."""

    source: str
    target: str
    input_images: tuple[str | None, ...]
    output_image: str | None
    caption: str | None
    task_name: str


@dataclass
class Minigpt5Sample:
    """One tokenised, loaded sample. T = source + target tokens; S input size; H output size."""

    input_ids: torch.Tensor  # (T,) long
    attention_mask: torch.Tensor  # (T,) long, ones
    labels: torch.Tensor  # (T,) long, -100 on source and [IMG1]..[IMG6]
    input_images: torch.Tensor  # (n_img, 3, S, S), n_img >= 1 (a black image when the record has none)
    output_image: torch.Tensor  # (3, H, W); zeros when has_output_image is False
    has_output_image: bool
    caption: str | None
    source: str
    target: str
    task_name: str
    output_image_path: str | None


@dataclass
class Minigpt5Batch(Mapping):
    """A collated batch; also a read-only mapping of its fields (`batch["input_ids"]`), which is how the
    model's `forward(samples)` and the runner's `move_to_device` read it.

    B samples, T the longest source + target."""

    input_ids: torch.Tensor  # (B, T) long, right-padded with the pad id (official: eos)
    attention_mask: torch.Tensor  # (B, T) long, 0 on padding
    labels: torch.Tensor  # (B, T) long, -100 on source, padding and [IMG1]..[IMG6]
    input_images: list[torch.Tensor]  # B tensors (n_img_b, 3, S, S)
    output_image: torch.Tensor  # (B, 3, H, W): [-1, 1] in train/val, [0, 1] in test; zeros where absent
    has_output_image: torch.Tensor  # (B,) bool
    captions: list[str | None]  # CC3M caption (caption loss) or None
    sources: list[str]
    targets: list[str]
    task_names: list[str]
    output_image_paths: list[str | None]

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# -- tokenisation and labels (pure) ---------------------------------------------------------------


def voken_label_mask(labels: torch.Tensor, first_voken_id: int) -> torch.Tensor:
    """labels: (T,). After the FIRST `[IMG0]` at t, positions t+1 .. t+6 become -100 (official
    `label[:, index+1 : index+IMG_TOKEN_NUM-1] = -100` with `index` the first match only)."""
    hits = (labels == first_voken_id).nonzero()
    if len(hits) == 0:
        return labels
    start = int(hits[0, 0])
    masked = labels.clone()
    masked[start + 1 : start + NUM_VOKENS - 1] = IGNORE_INDEX
    return masked


def sample_ids(
    source_ids: Sequence[int], target_ids: Sequence[int], first_voken_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels), each (T,), T = len(source) + len(target)."""
    source = torch.tensor(list(source_ids), dtype=torch.long)
    target = torch.tensor(list(target_ids), dtype=torch.long)
    input_ids = torch.cat([source, target])
    labels = torch.cat([torch.full_like(source, IGNORE_INDEX), target])
    return input_ids, torch.ones_like(input_ids), voken_label_mask(labels, first_voken_id)


class TokenizerAdapter:
    """The few things the datasets need of the model's (HF-call-API) LLaMA tokenizer."""

    def __init__(self, tokenizer: Any, max_length: int | None = None) -> None:
        if tokenizer is None:
            raise ConfigError(
                "MiniGPT-5 datasets tokenise their samples: pass the model's LLaMA tokenizer with the MiniGPT-5 "
                "tokens added (builder_cls(cfg, tokenizer=model.llama_tokenizer))"
            )
        self.tokenizer = tokenizer
        missing = [t for t in (*VOKENS, "<ImageHere>") if not self._is_added(t)]
        if missing:
            raise ConfigError(
                f"the tokenizer given to the MiniGPT-5 datasets lacks {', '.join(missing)}; add the 9 MiniGPT-5 "
                "tokens first (models.vokens.add_voken_tokens)"
            )
        self.first_voken_id = int(tokenizer.convert_tokens_to_ids(VOKENS[0]))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ConfigError(
                "the tokenizer given to the MiniGPT-5 datasets has neither a pad nor an eos token"
            )
        self.pad_token_id = int(pad)
        if max_length is None:
            model_max = getattr(tokenizer, "model_max_length", None)
            max_length = int(model_max) if model_max is not None and model_max < 10**9 else None
        self.max_length = max_length

    def _is_added(self, token: str) -> bool:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        return token_id is not None and token_id != self.tokenizer.unk_token_id

    def encode(self, text: str) -> list[int]:
        """Token ids, no BOS/EOS, cut at `max_length` (official `truncation=True`, right side)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids if self.max_length is None else ids[: self.max_length]

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


# -- skipped rows ---------------------------------------------------------------------------------


@dataclass
class SkipCounter:
    """Malformed rows a reader skipped, by reason; logged once per dataset (`report`)."""

    name: str
    path: Path | None = None
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.reasons[reason] += 1
        self.examples.setdefault(reason, where)

    @property
    def total(self) -> int:
        return sum(self.reasons.values())

    def report(self, num_samples: int, num_units: int, unit: str) -> None:
        if not self.total:
            logger.info("%s: %d samples from %d %s of %s", self.name, num_samples, num_units, unit, self.path)
            return
        detail = "; ".join(
            f"{count} {reason} (first: {self.examples[reason]})"
            for reason, count in self.reasons.most_common()
        )
        logger.warning(
            "%s: %d samples from %d %s of %s; skipped %d: %s",
            self.name,
            num_samples,
            num_units,
            unit,
            self.path,
            self.total,
            detail,
        )


# -- dataset --------------------------------------------------------------------------------------


class Minigpt5Dataset(Dataset):
    """Records -> samples. Subclasses read their format in `read_records` and set `LAYOUT` (quoted in errors).

    `test=True` is the official test mode of the format (see each reader). `choose` picks a prompt from a list
    (official `random.choice` at build time); default: a `random.Random(seed)`.
    """

    LAYOUT = ""
    UNIT = "rows"

    def __init__(
        self,
        records: list[Minigpt5Record],
        tokenizer: TokenizerAdapter,
        input_processor: Minigpt5ImageProcessor | None = None,
        output_processor: Minigpt5ImageProcessor | None = None,
        name: str = "",
        skipped: SkipCounter | None = None,
    ) -> None:
        self.records = records
        self.tokenizer = tokenizer
        self.input_processor = input_processor or Minigpt5InputImageProcessor()
        self.output_processor = output_processor or Minigpt5OutputImageProcessor()
        self.name = name or type(self).__name__
        self.skipped = skipped or SkipCounter(self.name)
        self.load_failures: Counter = Counter()

    @classmethod
    def read(
        cls,
        path: Path,
        storage: Path,
        tokenizer: TokenizerAdapter,
        *,
        test: bool,
        choose: Chooser,
        build_info: Mapping[str, Any],
        name: str,
    ) -> tuple[list[Minigpt5Record], SkipCounter, int]:
        """(records, skipped rows, rows / stories / conversations read) of one data file."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Minigpt5Sample:
        """The sample at `index`; if one of its images cannot be read (removed or corrupt after the build), the
        next indices are tried (at most 10, as the official MMDialog loader retries), never a crash mid-epoch."""
        for attempt in range(MAX_LOAD_RETRIES):
            record = self.records[(index + attempt) % len(self.records)]
            try:
                return self.load(record)
            except DataError as exc:
                self.load_failures[record.task_name] += 1
                if sum(self.load_failures.values()) == 1:
                    logger.warning("%s: %s; using the next sample (counted in load_failures)", self.name, exc)
        raise DataError(
            f"{self.name}: {MAX_LOAD_RETRIES} samples in a row from index {index} failed to load; "
            f"check the images under the dataset's storage. Expected layout: {self.LAYOUT}"
        )

    def load(self, record: Minigpt5Record) -> Minigpt5Sample:
        source_ids = self.tokenizer.encode(record.source)
        target_ids = self.tokenizer.encode(record.target)
        input_ids, attention_mask, labels = sample_ids(source_ids, target_ids, self.tokenizer.first_voken_id)
        inputs = [
            self.input_processor(self.open(path)) if path is not None else self.input_processor.blank()
            for path in record.input_images
        ]
        if record.output_image is not None:
            output = self.output_processor(expand2square(self.open(record.output_image), WHITE))
        else:
            size = self.output_processor.image_size
            output = torch.zeros(3, size, size)
        return Minigpt5Sample(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            input_images=torch.stack(inputs),
            output_image=output,
            has_output_image=record.output_image is not None,
            caption=record.caption,
            source=record.source,
            target=record.target,
            task_name=record.task_name,
            output_image_path=record.output_image,
        )

    def open(self, path: str) -> Any:
        return open_rgb(path, self.name, self.LAYOUT)

    def collater(self, samples: list[Minigpt5Sample]) -> Minigpt5Batch:
        return collate_minigpt5(samples, self.tokenizer.pad_token_id)


def collate_minigpt5(samples: Sequence[Minigpt5Sample], pad_token_id: int) -> Minigpt5Batch:
    """Official `DataCollator`: right padding of ids (pad id), labels (-100) and attention (0); input images as
    a per-sample list; output images stacked (samples must share the output size)."""
    if not samples:
        raise DataError("cannot collate an empty MiniGPT-5 batch")
    sizes = {tuple(s.output_image.shape) for s in samples}
    if len(sizes) != 1:
        raise DataError(f"cannot batch MiniGPT-5 output images of shapes {sorted(sizes)}")
    return Minigpt5Batch(
        input_ids=pad_sequence([s.input_ids for s in samples], batch_first=True, padding_value=pad_token_id),
        attention_mask=pad_sequence([s.attention_mask for s in samples], batch_first=True, padding_value=0),
        labels=pad_sequence([s.labels for s in samples], batch_first=True, padding_value=IGNORE_INDEX),
        input_images=[s.input_images for s in samples],
        output_image=torch.stack([s.output_image for s in samples]),
        has_output_image=torch.tensor([s.has_output_image for s in samples], dtype=torch.bool),
        captions=[s.caption for s in samples],
        sources=[s.source for s in samples],
        targets=[s.target for s in samples],
        task_names=[s.task_name for s in samples],
        output_image_paths=[s.output_image_path for s in samples],
    )


def resolve(root: Path, relative: str) -> str:
    """Official `os.path.join(DATAFOLDER, path)`: an absolute `relative` stays as it is."""
    return str(root / relative)
