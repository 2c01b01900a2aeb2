"""Batched, sharded, resumable benchmark evaluation.

For each benchmark split: every input file and image is checked before any model work; the samples not yet
answered are dealt round-robin to the processes (torchrun), each process appends its records after every batch,
and rank 0 merges all records, scores them and writes `<save_path>/<benchmark>/<split>.json` plus the summary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from minigpt4.common.dist import barrier, get_rank, get_world_size
from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.logging import progress
from minigpt4.conversation.templates import CONV_VISION_minigptv2, Conversation, prepare_texts
from minigpt4.evaluation.benchmarks import Benchmark, EvalSample, ScoreResult, build_benchmark
from minigpt4.evaluation.postprocess import ICONVQA_TEMPLATE, iconvqa_candidates
from minigpt4.evaluation.results import PredictionStore

logger = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 10
DEFAULT_MAX_NEW_TOKENS = 20


def generate_kwargs_for(benchmark: Benchmark, max_new_tokens: int) -> dict[str, Any]:
    """The official generation arguments: greedy, `max_new_tokens` from the config, plus per-benchmark extras.

    A block's `stop_words_ids` (token ids, e.g. [2] for </s>) is passed on so each row stops at its own stop
    token (the official call leaves stopping criteria commented out; greedy answers are cut at </s> anyway).
    """
    kwargs = {"max_new_tokens": int(max_new_tokens), "do_sample": False, **benchmark.generate_kwargs}
    stop_words_ids = benchmark.block.get("stop_words_ids")
    if stop_words_ids:
        kwargs["stop_words_ids"] = [int(token) for token in stop_words_ids]
    return kwargs


def eval_template() -> Conversation:
    """`CONV_VISION_minigptv2` with an empty system message, as both official eval scripts set it."""
    conv = CONV_VISION_minigptv2.copy()
    conv.system = ""
    return conv


@dataclass
class SplitJob:
    benchmark: Benchmark
    split: str
    samples: list[EvalSample]
    batch_size: int
    max_new_tokens: int

    @property
    def key(self) -> str:
        return f"{self.benchmark.dataset}/{self.split}"


def prepare_jobs(evaluation_cfg: Mapping[str, Any], names: Sequence[str]) -> list[SplitJob]:
    """Load every selected benchmark split and check its files and images; raises before any model work."""
    jobs = []
    for name in names:
        if name not in evaluation_cfg:
            raise ConfigError(
                f"--dataset {name}: not in evaluation_datasets (configured: {', '.join(evaluation_cfg) or 'none'})"
            )
        block = dict(evaluation_cfg[name])
        benchmark = build_benchmark(name, block)
        splits = block.get("splits") or benchmark.splits
        for split in [splits] if isinstance(splits, str) else list(splits):
            samples = benchmark.load(str(split))
            if not samples:
                raise DataError(f"{name} {split}: the evaluation file has no samples")
            missing = [sample.image_path for sample in samples if not sample.image_path.is_file()]
            if missing:
                raise DataError(
                    f"{name} {split}: {len(missing)} of {len(samples)} images are missing, e.g. {missing[0]}; "
                    f"check evaluation_datasets.{name}.img_path"
                )
            jobs.append(
                SplitJob(
                    benchmark,
                    str(split),
                    samples,
                    int(block.get("batch_size") or DEFAULT_BATCH_SIZE),
                    int(block.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
                )
            )
    return jobs


class _ImageDataset(torch.utils.data.Dataset):
    def __init__(self, samples: Sequence[EvalSample], vis_processor) -> None:
        self.samples = list(samples)
        self.vis_processor = vis_processor

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, EvalSample]:
        sample = self.samples[index]
        with Image.open(sample.image_path) as image:
            return self.vis_processor(image.convert("RGB")), sample


def _collate(items: list[tuple[torch.Tensor, EvalSample]]) -> tuple[torch.Tensor, list[EvalSample]]:
    return torch.stack([image for image, _ in items]), [sample for _, sample in items]


def model_outputs(model, job: SplitJob, images: torch.Tensor, batch: list[EvalSample]) -> list[Any]:
    """One batch through the model: generated answers, or candidate ranks for multiple choice."""
    if job.benchmark.mode == "multi_select":
        candidates, num_cand = iconvqa_candidates([sample.meta["choices"] for sample in batch])
        instructions = [ICONVQA_TEMPLATE.format(sample.instruction) for sample in batch]
        outputs = model.multi_select(images, instructions, candidates, num_cand=num_cand)
    else:
        texts = prepare_texts([sample.instruction for sample in batch], eval_template())
        options = generate_kwargs_for(job.benchmark, job.max_new_tokens)
        outputs = model.generate_answers(images, texts, **options).texts
    if len(outputs) != len(batch):
        raise RuntimeError(
            f"{job.key}: the model returned {len(outputs)} outputs for a batch of {len(batch)}"
        )
    return list(outputs)


def run_job(
    job: SplitJob,
    model,
    vis_processor,
    save_path: str | Path,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    source: Mapping[str, Any] | None = None,
) -> ScoreResult | None:
    """Answer the job's remaining samples on this rank's shard; on rank 0, merge, score and save. Returns the
    score on rank 0 (None elsewhere). `source` (see `model_source`) names the model: predictions saved by
    another source are not resumed from."""
    rank, world_size = get_rank(), get_world_size()
    split_dir = Path(save_path) / job.benchmark.dataset
    store = PredictionStore(split_dir / f"{job.split}.parts", rank)
    store.check_source({**(source or {}), "max_new_tokens": job.max_new_tokens}, record=rank == 0)
    done = store.done_keys()
    barrier()  # everyone has read the same done set before anyone appends
    todo = [sample for sample in job.samples if sample.key not in done][rank::world_size]
    if done:
        logger.info("%s: resuming, %d of %d samples already answered", job.key, len(done), len(job.samples))
    loader = torch.utils.data.DataLoader(
        _ImageDataset(todo, vis_processor),
        batch_size=job.batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    with torch.inference_mode():
        for images, batch in progress(loader, desc=job.key, total=len(loader)):
            outputs = model_outputs(model, job, images.to(device), batch)
            store.append(job.benchmark.record(sample, output) for sample, output in zip(batch, outputs))
    barrier()
    if rank != 0:
        return None
    records = store.merged()
    if len(records) != len(job.samples):
        raise DataError(f"{job.key}: {len(records)} predictions for {len(job.samples)} samples after merging")
    result = job.benchmark.score(job.samples, records)
    write_split_result(split_dir / f"{job.split}.json", job, result, records)
    return result


def write_split_result(path: Path, job: SplitJob, result: ScoreResult, records: list[dict[str, Any]]) -> None:
    payload = {
        "benchmark": job.benchmark.dataset,
        "split": job.split,
        "score": result.score,
        "n": result.n,
        "unparsable": result.unparsable,
        "chance": result.chance,
        "extra": result.extra,
        "predictions": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")


def model_source(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the evaluated model: its checkpoint file (path, size, modification time) and LLM."""
    ckpt = str(model_cfg.get("ckpt") or "")
    source: dict[str, Any] = {"ckpt": ckpt, "llama_model": str(model_cfg.get("llama_model") or "")}
    if ckpt and Path(ckpt).is_file():
        stat = Path(ckpt).stat()
        source.update(ckpt=str(Path(ckpt).resolve()), ckpt_bytes=stat.st_size, ckpt_mtime_ns=stat.st_mtime_ns)
    return source


def evaluate_jobs(
    jobs: Sequence[SplitJob],
    model,
    vis_processor,
    save_path: str | Path,
    device="cpu",
    num_workers: int = 0,
    source: Mapping[str, Any] | None = None,
) -> dict[str, ScoreResult]:
    """Run every job; returns {benchmark/split: score} on rank 0 (empty elsewhere)."""
    results = {}
    for job in jobs:
        result = run_job(job, model, vis_processor, save_path, device, num_workers, source)
        if result is not None:
            results[job.key] = result
            logger.info("%s: %.4f (n=%d, unparsable=%d)", job.key, result.score, result.n, result.unparsable)
    return results
