"""Parity family `eval_postprocess`: prompts, saved predictions and scores of the official eval_vqa.py benchmarks.

Samples are fed to our benchmark classes (`minigpt4.evaluation.benchmarks`) exactly as their readers would
build them; prompts go through our conversation template; scores come from the same code the scripts use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from minigpt4.conversation.templates import CONV_VISION_minigptv2, prepare_texts
from minigpt4.evaluation.benchmarks import build_benchmark
from minigpt4.evaluation.benchmarks.benchmark import EvalSample
from minigpt4.evaluation.postprocess import (
    HM_PROMPT,
    ICONVQA_TEMPLATE,
    VIZWIZ_PROMPT,
    VQA_PROMPT,
    VSR_PROMPT,
    iconvqa_candidates,
    vizwiz_gt_answers,
    vsr_label,
)
from minigpt4.evaluation.sharded_runs import generate_kwargs_for
from minigpt4.models.generation import rank_candidates
from minigpt4.tools.parity.report import FamilyReport

FLOAT_REL = 1e-9
LAST_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")
PROMPTS = {"okvqa": VQA_PROMPT, "vizwiz": VIZWIZ_PROMPT, "gqa": VQA_PROMPT, "vsr": VSR_PROMPT, "hm": HM_PROMPT,
           "iconvqa": VQA_PROMPT}  # fmt: skip
FIRST_QUESTION_ID = 5000  # the generator numbered OKVQA questions from 5000


def _template():
    conv = CONV_VISION_minigptv2.copy()
    conv.system = ""
    return conv


def _printed_score(printed: str) -> float:
    lines = [line for line in printed.splitlines() if line.strip() and "non-matching" not in line]
    return float(LAST_NUMBER.search(lines[-1].strip()).group(1))


def _samples(name: str, raw_samples: list[dict[str, Any]]) -> list[EvalSample]:
    samples = []
    for index, item in enumerate(raw_samples):
        instruction = PROMPTS[name].format(item["question"])
        meta: dict[str, Any] = {}
        if name == "okvqa":
            qid = FIRST_QUESTION_ID + index
            answers = [
                {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                for i, a in enumerate(item["gt"])
            ]
            target: Any = {"question_id": qid, "answers": answers, "question_type": "", "answer_type": ""}
        elif name == "vizwiz":
            target = vizwiz_gt_answers([{"answer": a} for a in item["gt"]])
        elif name == "gqa":
            target = item["gt"]
        elif name == "vsr":
            target = vsr_label(item["label"])
        elif name == "hm":
            target = int(item["label"])
        else:  # iconvqa
            target, meta = int(item["answer"]), {"choices": item["choices"]}
        samples.append(EvalSample(index, str(index), Path("unused"), instruction, target, meta))
    return samples


def _outputs(name: str, raw_samples: list[dict[str, Any]], batch_size: int) -> tuple[list[Any], list[dict]]:
    """Model outputs per sample (iconvqa: ranks from the recorded losses, batched as the script does)."""
    if name != "iconvqa":
        return [item["raw"] for item in raw_samples], []
    outputs, calls = [], []
    for start in range(0, len(raw_samples), batch_size):
        batch = raw_samples[start : start + batch_size]
        candidates, num_cand = iconvqa_candidates([item["choices"] for item in batch])
        width = len(candidates)
        losses = torch.tensor([item["losses"] + [0.0] * (width - len(item["losses"])) for item in batch])
        outputs += rank_candidates(losses, num_cand)
        calls.append({"candidates": candidates, "num_cand": num_cand})
    return outputs, calls


def _saved(name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    if name == "okvqa":
        return [{"answer": r["answer"], "question_id": r["question_id"]} for r in records]
    if name == "vizwiz":
        return [{"answer": r["answer"]} for r in records]
    if name in ("gqa", "vsr", "hm"):
        return [{"pred": r["pred"], "gt": r["gt"]} for r in records]
    return None


def _check_dataset(report: FamilyReport, name: str, data: dict[str, Any]) -> None:
    raw_samples = data["samples"]
    batch_size = len(data["all_calls"][0]["texts"])
    benchmark = build_benchmark(name, {})
    samples = _samples(name, raw_samples)

    # prompts, batch by batch
    for call_index, call in enumerate(data["all_calls"]):
        batch = samples[call_index * batch_size : (call_index + 1) * batch_size]
        if name == "iconvqa":
            prompts = [ICONVQA_TEMPLATE.format(s.instruction) for s in batch]
        else:
            prompts = prepare_texts([s.instruction for s in batch], _template())
        report.exact(f"{name}: prompts of call {call_index}", call["texts"], prompts)

    outputs, icon_calls = _outputs(name, raw_samples, batch_size)
    if name == "iconvqa":
        for call_index, (call, ours) in enumerate(zip(data["all_calls"], icon_calls)):
            report.exact(f"{name}: candidates of call {call_index}", call["candidates"], ours["candidates"])
            report.exact(f"{name}: num_cand of call {call_index}", call["num_cand"], ours["num_cand"])
    else:
        max_new_tokens = data["generate_kwargs"].get("max_new_tokens", 20)
        report.exact(
            f"{name}: generate kwargs",
            data["generate_kwargs"],
            generate_kwargs_for(benchmark, max_new_tokens),
        )

    records = [benchmark.record(sample, output) for sample, output in zip(samples, outputs)]
    result = benchmark.score(samples, records)
    report.close(f"{name}: overall score", _printed_score(data["printed"]), result.score, FLOAT_REL)
    if name == "hm":
        expected_unmatched = data["printed"].count("non-matching answer")
        report.exact(f"{name}: unparsable answers", expected_unmatched, result.unparsable)
    saved = _saved(name, records)
    if saved is not None:
        expected_saved = next(iter(data["saved_outputs"].values()))
        report.exact(f"{name}: saved predictions", expected_saved, saved)

    for run_index, run in enumerate(data.get("per_sample_runs", [])):
        one = _samples(name, [run["sample"]])
        one_outputs, _ = _outputs(name, [run["sample"]], 1)
        one_records = [benchmark.record(one[0], one_outputs[0])]
        got = benchmark.score(one, one_records).score
        report.close(f"{name}: sample {run_index} score", _printed_score(run["printed"]), got, FLOAT_REL)
        one_saved = _saved(name, one_records)
        if one_saved is not None and run.get("saved"):
            report.exact(f"{name}: sample {run_index} saved", next(iter(run["saved"].values())), one_saved)


def check(path: Path) -> FamilyReport:
    report = FamilyReport("eval_postprocess")
    data = json.loads(Path(path).read_text())
    for name, dataset in data["datasets"].items():
        try:
            _check_dataset(report, name, dataset)
        except Exception as exc:  # one dataset's crash must not hide the others
            report.error(f"{name}: checker", exc)
    return report
