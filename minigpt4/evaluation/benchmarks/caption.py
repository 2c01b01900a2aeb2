"""COCO caption (not in the official scripts): BLEU-4, METEOR, ROUGE-L, CIDEr through pycocoevalcap; no SPICE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from minigpt4.evaluation.benchmarks.benchmark import Benchmark, EvalSample, ScoreResult
from minigpt4.evaluation.caption_metrics import caption_metrics
from minigpt4.evaluation.postprocess import CAPTION_PROMPT, strip_unk


class COCOCaption(Benchmark):
    """`eval_file_path`: a Karpathy-style list of {image, caption (str or list)} (LAVIS `coco_karpathy_test.json`);
    images `img_path/<image>`. The score is CIDEr x 100; every metric is in `extra`. Option `prompt`."""

    name = "coco_caption"
    splits = ("test",)

    def load(self, split: str) -> list[EvalSample]:
        path = self.eval_file_path
        data = self._load_json(path, "caption annotations")
        prompt = str(self.block.get("prompt", CAPTION_PROMPT))
        samples = []
        for index, item in enumerate(data):
            captions = self._field(item, "caption", path, index)
            samples.append(
                EvalSample(
                    index=index,
                    key=str(index),
                    image_path=self.img_path / self._field(item, "image", path, index),
                    instruction=prompt,
                    target=[captions] if isinstance(captions, str) else list(captions),
                )
            )
        return samples

    def record(self, sample: EvalSample, output: Any) -> dict[str, Any]:
        caption = strip_unk(output)
        return {
            "index": sample.index,
            "key": sample.key,
            "raw": output,
            "caption": caption,
            "parsable": caption != "",
        }

    def score(self, samples: Sequence[EvalSample], records: Sequence[Mapping[str, Any]]) -> ScoreResult:
        references = {sample.key: sample.target for sample in samples}
        predictions = {record["key"]: record["caption"] for record in records}
        metrics = caption_metrics(references, predictions)
        unparsable = sum(not r["parsable"] for r in records)
        return ScoreResult(float(metrics["cider"]) * 100, len(records), unparsable, None, metrics)
