"""The benchmark table: config name -> benchmark class (one class per protocol)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minigpt4.common.errors import ConfigError
from minigpt4.evaluation.benchmarks.benchmark import Benchmark, EvalSample, ScoreResult
from minigpt4.evaluation.benchmarks.caption import COCOCaption
from minigpt4.evaluation.benchmarks.closed_vqa import VSR, HatefulMemes, IconVQA
from minigpt4.evaluation.benchmarks.open_vqa import GQA, OKVQA, VizWiz, VQAv2
from minigpt4.evaluation.benchmarks.rec import RefCOCO, RefCOCOg, RefCOCOPlus

BENCHMARKS: dict[str, type[Benchmark]] = {
    "refcoco": RefCOCO,
    "refcoco+": RefCOCOPlus,
    "refcocog": RefCOCOg,
    "okvqa": OKVQA,
    "vizwiz": VizWiz,
    "iconvqa": IconVQA,
    "gqa": GQA,
    "vsr": VSR,
    "hm": HatefulMemes,
    "vqav2": VQAv2,
    "coco_caption": COCOCaption,
}
REC_BENCHMARKS = ("refcoco", "refcoco+", "refcocog")
VQA_BENCHMARKS = ("okvqa", "vizwiz", "iconvqa", "gqa", "vsr", "hm", "vqav2", "coco_caption")


def build_benchmark(name: str, block: Mapping[str, Any]) -> Benchmark:
    """The benchmark for config name `name`; an optional `benchmark:` key in the block picks another protocol."""
    protocol = str(block.get("benchmark", name))
    if protocol not in BENCHMARKS:
        raise ConfigError(
            f"evaluation_datasets.{name}: unknown benchmark {protocol!r}; known: {', '.join(BENCHMARKS)} "
            "(set `benchmark:` in the block to use one of them under another name)"
        )
    return BENCHMARKS[protocol](block, name=name)


__all__ = [
    "BENCHMARKS",
    "REC_BENCHMARKS",
    "VQA_BENCHMARKS",
    "Benchmark",
    "EvalSample",
    "ScoreResult",
    "build_benchmark",
]
