"""Where the tensors of a freshly built model came from, said once after all its files are loaded.

A model is filled from several files in turn (EVA ViT, BLIP-2 Q-Former, the LLM folder, `model.ckpt`, ...), and a
later file may overwrite or complete an earlier one. A line per file ("N model tensors not in the file") or per
part ("the LLM keeps its RANDOM initialisation") would be untrue whenever the next file holds those tensors, so
the loaders record which file filled which key here, and `report` logs:

- one INFO line: each file and the parts it filled;
- a WARNING per pretrained part (EVA ViT, Q-Former, LLM) with tensors that no file filled: they keep their
  random initialisation; an INFO line instead for a part that `model.random_init` lists (`[qformer, llm]`: a
  recipe that trains it from scratch on purpose, as the quickstart's tiny models do);
- a WARNING when the checkpoint that should hold every trainable tensor lacks some (`model.ckpt_allow_missing`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from minigpt4.common.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainedPart:
    """A part whose weights must come from a file: its name for people, its key prefixes, how to give it one."""

    name: str
    key: str  # its name in model.random_init
    prefixes: tuple[str, ...]
    fix: str


PRETRAINED_PARTS = (
    PretrainedPart(
        "EVA ViT", "vit", ("visual_encoder.",), "set model.vit_ckpt, or a model.ckpt that holds it"
    ),
    PretrainedPart(
        "Q-Former",
        "qformer",
        ("Qformer.", "query_tokens"),
        "set model.q_former_model, or a model.ckpt that holds it",
    ),
    PretrainedPart(
        "LLM",
        "llm",
        ("llama_model.",),
        "point model.llama_model at a folder with weights, or use a model.ckpt that holds the LLM",
    ),
)


def random_init_parts(value: Any) -> frozenset[str]:
    """`model.random_init` (a list of part keys, or one) checked against the parts there are."""
    names = [value] if isinstance(value, str) else list(value or [])
    known = {part.key for part in PRETRAINED_PARTS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"model.random_init: {', '.join(map(repr, unknown))} is no pretrained part; expected a list of "
            f"{sorted(known)} (the parts that start from random weights on purpose)"
        )
    return frozenset(names)


def _is_new_adapter(key: str) -> bool:
    """LoRA matrices start fresh by design (lora_B is zero): only a checkpoint fills them, never a pretrained file."""
    return "lora_" in key


def _part(key: str) -> str:
    return key.split(".", 1)[0]


@dataclass
class WeightSources:
    """Model state-dict key -> the file (described for people) its values were last copied from."""

    by_key: dict[str, str] = field(default_factory=dict)

    def record(self, source: str, keys: Iterable[str], prefix: str = "") -> None:
        for key in keys:
            self.by_key[prefix + key] = source

    def summary(self) -> str:
        """'weights: <file> -> part, part (N tensors); <file> -> ...', files in loading order."""
        parts: dict[str, dict[str, None]] = {}
        counts: dict[str, int] = {}
        for key, source in self.by_key.items():
            parts.setdefault(source, {})[_part(key)] = None
            counts[source] = counts.get(source, 0) + 1
        if not parts:
            return "weights: no file loaded, every tensor has its initial value"
        return "weights: " + "; ".join(
            f"{source} -> {', '.join(names)} ({counts[source]} tensors)" for source, names in parts.items()
        )

    def unfilled(self, model: nn.Module, part: PretrainedPart) -> tuple[list[str], int]:
        """(keys of `part`'s floating-point parameters no file filled, how many it has)."""
        keys = [
            name
            for name, param in model.named_parameters()
            if name.startswith(part.prefixes) and param.is_floating_point() and not _is_new_adapter(name)
        ]
        return [key for key in keys if key not in self.by_key], len(keys)

    def report(
        self,
        model: nn.Module,
        complete_checkpoint: str | None = None,
        random_by_design: frozenset[str] = frozenset(),
    ) -> None:
        """Log what was loaded from where (once), and warn about what no file filled.

        complete_checkpoint: the file that should hold every trainable tensor (`model.ckpt`), if any.
        random_by_design: keys of the parts that start random on purpose (`model.random_init`): said, not warned."""
        logger.info("%s", self.summary())
        warned: set[str] = set()
        for part in PRETRAINED_PARTS:
            missing, total = self.unfilled(model, part)
            if missing and part.key in random_by_design:
                logger.info(
                    "%s: %d of its %d tensors start from RANDOM initialisation, as model.random_init asks",
                    part.name,
                    len(missing),
                    total,
                )
                warned.update(missing)
            elif missing:
                logger.warning(
                    "%s: %d of its %d tensors are in no weight file and keep their RANDOM initialisation "
                    "(e.g. %s); %s",
                    part.name,
                    len(missing),
                    total,
                    missing[0],
                    part.fix,
                )
                warned.update(missing)
        if complete_checkpoint:
            lacking = [
                name
                for name, param in model.named_parameters()
                if param.requires_grad and name not in self.by_key and name not in warned
            ]
            if lacking:
                logger.warning(
                    "%s lacks %d trainable tensors (e.g. %s): they keep their initial values "
                    "(model.ckpt_allow_missing is on); use the checkpoint of a run of this model type",
                    complete_checkpoint,
                    len(lacking),
                    lacking[0],
                )
