"""MiniGPT-5 evaluation: generate for a test split (sharded, resumable), then score it as the official `metric.py`.

Generation: the split's test records (official test mode: CC3M caption -> image, VIST `-gen` steps, every MMDialog
turn) are dealt round-robin to the processes; each appends one JSON record per sample to
`<save_path>/<benchmark>/<split>.parts/predictions.rank<R>.jsonl` after every batch (`results.PredictionStore`), its
images as PNG files beside them (`images/<task name>.png`, written before the record). A rerun skips every sample
whose record exists, so a killed run loses at most its batch in flight. CC3M also renders the official "SD baseline"
(the image decoder conditioned on the ground-truth caption's CLIP text features).

Scoring (rank 0, `score_split`): the metrics of `minigpt5_metrics` for what the benchmark reports, each with the
scorer it needs; a metric whose weights are missing is reported as None with the reason.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch import nn

from minigpt4.common.dist import barrier, get_rank, get_world_size
from minigpt4.common.errors import ConfigError, DataError
from minigpt4.common.logging import progress
from minigpt4.datasets.formats.minigpt5 import Minigpt5Record
from minigpt4.evaluation import minigpt5_metrics as metrics
from minigpt4.evaluation.minigpt5_paper import paper_cells, paper_entry, paper_footnote
from minigpt4.evaluation.results import PredictionStore

if TYPE_CHECKING:
    from minigpt4.models.generation import GenerationResult

logger = logging.getLogger(__name__)
BENCHMARKS = ("cc3m", "vist", "mmdialog")
SCENE_TEXT = re.compile(r"scene description: (.*) ###Assistant:$", re.DOTALL)
VOKEN_OR_END = re.compile(r"(\[IMG\d\])+|###")


@dataclass
class Minigpt5Job:
    """One benchmark split: its test records and how to generate for them."""

    benchmark: str
    split: str
    records: list[Minigpt5Record]
    batch_size: int = 4
    generation: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def key(self) -> str:
        return f"minigpt5-{self.benchmark}/{self.split}"


def load_records(benchmark: str, data_path: str | Path, tokenizer: Any = None) -> list[Minigpt5Record]:
    """The official test records of one data file (images checked)."""
    from minigpt4.datasets.formats.cc3m_tsv import cc3m_records
    from minigpt4.datasets.formats.minigpt5 import TokenizerAdapter
    from minigpt4.datasets.formats.mmdialog import mmdialog_records
    from minigpt4.datasets.formats.vist import vist_records

    path = Path(data_path)
    if benchmark == "cc3m":
        records, _, _ = cc3m_records(path, path.parent, test=True)
    elif benchmark == "vist":
        records, _, _ = vist_records(path, path.parent, test=True)
        records = [r for r in records if r.task_name.endswith("-gen")]
    elif benchmark == "mmdialog":
        records, _, _ = mmdialog_records(path, TokenizerAdapter(tokenizer), test=True)
    else:
        raise ConfigError(f"MiniGPT-5 benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    if not records:
        raise DataError(f"{benchmark}: {path} gave no test samples")
    return records


def ground_truth_text(benchmark: str, record: Minigpt5Record) -> str:
    """CC3M: the caption; VIST: the scene description of the step; MMDialog: the turn's text."""
    if benchmark == "cc3m":
        return record.caption or record.source
    if benchmark == "vist":
        found = SCENE_TEXT.search(record.source)
        return found.group(1).strip() if found else ""
    return VOKEN_OR_END.sub("", record.target).strip()


def _pixels(record: Minigpt5Record, vis_processor) -> torch.Tensor | None:
    paths = [p for p in record.input_images if p is not None]
    if not paths:
        return None
    loaded = []
    for path in paths:
        with Image.open(path) as image:
            loaded.append(vis_processor(image.convert("RGB")))
    return torch.stack(loaded)


def answer_records(model, records: Sequence[Minigpt5Record], vis_processor, generation: Mapping[str, Any],
                   generator: torch.Generator | None) -> GenerationResult:  # fmt: skip
    """`generate_answers` for one batch of records: their input images through vis_processor, on the model's
    device; generation: its options."""
    device = next(model.parameters()).device
    pixels = [p.to(device) if p is not None else None for p in (_pixels(r, vis_processor) for r in records)]
    return model.generate_answers(pixels, [r.source for r in records], generator=generator, **generation)


@torch.inference_mode()
def first_images(model, records: Sequence[Minigpt5Record], vis_processor, generation: Mapping[str, Any],
                 batch_size: int, generator: torch.Generator | None) -> list[Image.Image | None]:  # fmt: skip
    """The first image each record's prompt drew (None: it produced no `[IMG0]`), batch after batch with one
    generator (the quickstart's judged generation; `run_generation` reseeds each batch to resume)."""
    images: list[Image.Image | None] = []
    for start in range(0, len(records), batch_size):
        out = answer_records(model, records[start : start + batch_size], vis_processor, generation, generator)
        images += [drawn[0] if drawn else None for drawn in out.images]
    return images


def _baseline(model, captions: Sequence[str], generation: Mapping[str, Any], generator) -> list[Image.Image]:
    """Official CC3M "SD baseline": the image decoder on the caption's CLIP text features, CFG against ""."""
    decoder = model.image_decoder
    conditioning = decoder.encode_text(list(captions))
    negative = decoder.encode_text([""])
    return decoder.generate(
        conditioning, negative, guidance_scale=float(generation.get("guidance_scale", 7.5)),
        num_inference_steps=int(generation.get("num_inference_steps", 50)), generator=generator,
    ).images  # fmt: skip


def run_generation(job: Minigpt5Job, model, vis_processor, save_path: str | Path,
                   source: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """Generate this rank's share of the samples not yet answered; returns the split folder."""
    rank, world_size = get_rank(), get_world_size()
    split_dir = Path(save_path) / f"minigpt5-{job.benchmark}"
    store = PredictionStore(split_dir / f"{job.split}.parts", rank)
    store.check_source({**(source or {}), **job.generation, "seed": job.seed}, record=rank == 0)
    done = store.done_keys()
    barrier()
    indexed = [(i, r) for i, r in enumerate(job.records) if r.task_name not in done][rank::world_size]
    if done:
        logger.info("%s: resuming, %d of %d samples already generated", job.key, len(done), len(job.records))
    images_dir = split_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    batches = [indexed[s : s + job.batch_size] for s in range(0, len(indexed), job.batch_size)]
    for batch in progress(batches, desc=job.key, total=len(batches)):
        first = batch[0][0]
        generator = torch.Generator(device=device).manual_seed(job.seed * 1_000_003 + first)  # resume-stable
        records = [r for _, r in batch]
        with torch.inference_mode():
            out = answer_records(model, records, vis_processor, job.generation, generator)
            baselines = None
            if job.benchmark == "cc3m" and model.image_decoder is not None:
                baselines = _baseline(model, [r.caption or "" for r in records], job.generation, generator)
        rows = []
        for row, ((index, record), text, drawn) in enumerate(zip(batch, out.texts, out.images)):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", record.task_name)
            pred_image = None
            if drawn:
                pred_image = f"images/{name}.png"
                drawn[0].save(split_dir / pred_image)
            baseline_image = None
            if baselines is not None:
                baseline_image = f"images/{name}_sd.png"
                baselines[row].save(split_dir / baseline_image)
            rows.append({
                "key": record.task_name, "index": index, "pred_text": text, "pred_image": pred_image,
                "baseline_image": baseline_image, "gt_text": ground_truth_text(job.benchmark, record),
                "gt_image": record.output_image, "source": record.source,
            })  # fmt: skip
        store.append(rows)
    barrier()
    return split_dir


# --- scoring ------------------------------------------------------------------------------------------------------


@dataclass
class Scorers:
    """What scoring may use; None = not available (the reason says why, e.g. which weight is missing)."""

    clip: metrics.ClipScorer | None = None
    fid_feature: nn.Module | None = None
    is_feature: nn.Module | None = None
    sentence: metrics.SentenceEmbedder | None = None
    judge: metrics.Judge | None = None
    missing: dict[str, str] = field(default_factory=dict)  # metric family -> reason
    feature_name: str = "inception"


def _open(split_dir: Path, relative: str | None) -> Image.Image | None:
    if relative is None:
        return None
    path = Path(relative) if Path(relative).is_absolute() else split_dir / relative
    with Image.open(path) as image:
        return image.convert("RGB")


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def score_split(
    benchmark: str, records: list[dict[str, Any]], split_dir: Path, scorers: Scorers
) -> dict[str, Any]:
    """The official metrics of one benchmark over merged records (see the module docstring of minigpt5_metrics)."""
    scores: dict[str, Any] = {"n": len(records)}
    gt_images = [_open(split_dir, r["gt_image"]) for r in records]
    pred_images = [_open(split_dir, r["pred_image"]) for r in records]
    both = [i for i, (g, p) in enumerate(zip(gt_images, pred_images)) if g is not None and p is not None]
    asked = [g is not None for g in gt_images]
    scores.update(
        metrics.opening_rates(asked, [p is not None for p in pred_images], [r["pred_text"] for r in records])
    )
    scores["images_generated"] = sum(p is not None for p in pred_images)

    def image_scores(prefix: str, generated: list[Image.Image | None]) -> None:
        pairs = [i for i in range(len(records)) if gt_images[i] is not None and generated[i] is not None]
        made = [g for g in generated if g is not None]
        if scorers.clip is not None and pairs:
            gen = scorers.clip.image_embeds([generated[i] for i in pairs])
            scores[f"{prefix}clip_i"] = float(
                metrics.paired_cosine(scorers.clip.image_embeds([gt_images[i] for i in pairs]), gen).mean()
            )
            texts = [records[i]["gt_text"] for i in pairs]
            scores[f"{prefix}clip_t"] = float(
                metrics.paired_cosine(scorers.clip.text_embeds(texts), gen).mean()
            )
        if scorers.is_feature is not None and made:
            scores[f"{prefix}is"], scores[f"{prefix}is_std"] = metrics.inception_score(
                metrics.to_batch(made), scorers.is_feature
            )
        real = [g for g in gt_images if g is not None]
        if scorers.fid_feature is not None and len(made) >= 2 and len(real) >= 2:
            scores[f"{prefix}fid"] = metrics.fid_score(
                metrics.to_batch(real), metrics.to_batch(made), scorers.fid_feature
            )

    if benchmark in ("cc3m", "vist"):
        image_scores("", pred_images)
    if benchmark == "cc3m" and any(r.get("baseline_image") for r in records):
        image_scores("sd_baseline_", [_open(split_dir, r.get("baseline_image")) for r in records])
    if benchmark == "vist" and scorers.fid_feature is not None:
        stories: dict[str, list[int]] = defaultdict(list)
        for i, record in enumerate(records):  # task names <story>_<step>-gen
            stories[record["key"].rsplit("_", 1)[0]].append(i)
        per_story = []
        for members in stories.values():
            made = [pred_images[i] for i in members if pred_images[i] is not None]
            real = [gt_images[i] for i in members if gt_images[i] is not None]
            if len(members) >= 2 and len(made) >= 2 and len(real) >= 2:
                per_story.append(
                    metrics.fid_score(metrics.to_batch(real), metrics.to_batch(made), scorers.fid_feature)
                )
        scores["story_fid"] = _mean(per_story)
        scores["stories_scored"] = len(per_story)
    if benchmark == "mmdialog":
        refs = [r["gt_text"] for r in records]
        hyps = [r["pred_text"] for r in records]
        scores["bleu_1"], scores["bleu_2"] = metrics.bleu_1_2(refs, hyps)
        scores["rouge_l"] = metrics.rouge_l(refs, hyps)
        if scorers.sentence is not None:
            scores["sentence_cosine"] = float(
                metrics.paired_cosine(scorers.sentence(refs), scorers.sentence(hyps)).mean()
            )
        made = [p for p in pred_images if p is not None]
        if scorers.is_feature is not None and made:
            scores["is"], scores["is_std"] = metrics.inception_score(
                metrics.to_batch(made), scorers.is_feature
            )
        if scorers.clip is not None:
            sims: list[float | None] = [None] * len(records)
            if both:
                gen = scorers.clip.image_embeds([pred_images[i] for i in both])
                ref = scorers.clip.image_embeds([gt_images[i] for i in both])
                for i, sim in zip(both, metrics.paired_cosine(ref, gen).tolist()):
                    sims[i] = sim
            conversations: dict[str, list[int]] = defaultdict(list)
            for i, record in enumerate(records):  # task names mmdialog<conversation>_<turn>
                conversations[record["key"].rsplit("_", 1)[0]].append(i)
            f1s = [
                metrics.clip_f1(
                    [sims[i] for i in m], [asked[i] for i in m], [pred_images[i] is not None for i in m]
                )
                for m in conversations.values()
            ]
            scores["clip_f1"] = _mean([f["f1"] for f in f1s])
            text_sim = metrics.paired_cosine(scorers.clip.text_embeds(refs), scorers.clip.text_embeds(hyps))
            scores["clip_text_text"] = float(text_sim.mean())
            scores["clip_f1_missed"] = sum(m == metrics.MISSED for f in f1s for m in f["markers"])
            scores["clip_f1_spurious"] = sum(m == metrics.SPURIOUS for f in f1s for m in f["markers"])
    if scorers.judge is not None and both:
        verdicts = [(scorers.judge(gt_images[i]), scorers.judge(pred_images[i])) for i in both]
        scores["judge_colour_acc"] = sum(g[0] == p[0] for g, p in verdicts) / len(verdicts)
        scores["judge_shape_acc"] = sum(g[1] == p[1] for g, p in verdicts) / len(verdicts)
        scores["judge_both_acc"] = sum(g == p for g, p in verdicts) / len(verdicts)
    scores["features"] = scorers.feature_name
    if scorers.missing:
        scores["not_computed"] = dict(scorers.missing)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()}


def finish_split(job: Minigpt5Job, split_dir: Path, scorers: Scorers) -> dict[str, Any]:
    """Rank 0: merge every rank's records, score, write `<split>.json` (scores + predictions)."""
    store = PredictionStore(split_dir / f"{job.split}.parts", 0)
    records = store.merged()
    if len(records) != len(job.records):
        raise DataError(f"{job.key}: {len(records)} predictions for {len(job.records)} samples after merging")
    scores = score_split(job.benchmark, records, split_dir, scorers)
    payload = {"benchmark": job.key, "scores": scores, "predictions": records}
    (split_dir / f"{job.split}.json").write_text(json.dumps(payload, indent=1) + "\n")
    return scores


# --- summary ------------------------------------------------------------------------------------------------------

SUMMARY_ORDER = (
    "clip_i", "clip_t", "is", "fid", "story_fid", "sd_baseline_clip_i", "sd_baseline_clip_t", "sd_baseline_is",
    "sd_baseline_fid", "bleu_1", "bleu_2", "rouge_l", "sentence_cosine", "clip_f1", "judge_colour_acc",
    "judge_shape_acc", "judge_both_acc", "no_image_rate", "no_text_rate",
)  # fmt: skip


def write_summary(save_path: str | Path, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge into `<save_path>/summary.json` (other benchmarks stay) and rewrite `summary.md`."""
    save_path = Path(save_path)
    path = save_path / "summary.json"
    summary: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for key, scores in results.items():
        summary[key] = {**scores, "paper": paper_entry(key)}
    save_path.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
    (save_path / "summary.md").write_text(markdown_table(summary) + "\n")
    return summary


def markdown_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """Ours beside the paper's MiniGPT-5 and its baseline (SD 2 rows are our `sd_baseline_*` metrics)."""
    lines = ["| benchmark/split | metric | ours | paper | paper baseline |", "|---|---|---|---|---|"]
    footnotes = []
    for key in sorted(k for k in summary if k.startswith("minigpt5-")):
        entry = summary[key]
        paper = entry.get("paper") or {}
        for name in SUMMARY_ORDER:
            if name in entry:
                lines.append(
                    f"| {key} | {name} | {_fmt(entry[name])} | {' | '.join(paper_cells(paper, name))} |"
                )
        lines.append(
            f"| {key} | n (images generated) | {entry.get('n')} ({entry.get('images_generated')}) | | |"
        )
        for family, reason in (entry.get("not_computed") or {}).items():
            lines.append(f"| {key} | {family} | not computed: {reason} | | |")
        footnotes.append(paper_footnote(key, paper))
    return "\n".join([*lines, "", *footnotes])


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
