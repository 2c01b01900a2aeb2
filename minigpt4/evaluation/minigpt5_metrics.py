"""MiniGPT-5 metrics, defined as the official `metric.py` defines them, computed by the libraries made for them.

* CLIP-I: cosine of the CLIP image embeddings of the ground-truth and the generated image; CLIP-T: cosine of the
  CLIP text embedding of the ground-truth text and the generated image's embedding. Official: open_clip ViT-L/14
  (`openai`; MMDialog ViT-B/32); here transformers' `CLIPModel` with the same OpenAI weights in HF format
  (`openai/clip-vit-large-patch14`, `openai/clip-vit-base-patch32`), the same preprocessing (shortest side to 224,
  bicubic, centre crop, CLIP mean/std) and the same L2-normalised projections.
* FID and IS: `torchmetrics` `FrechetInceptionDistance(normalize=True)` / `InceptionScore(normalize=True)`
  (official: the same classes), with the feature extractor given as a module (`feature=`): torchmetrics' default
  needs torch-fidelity, which needs torchvision. `TorchScriptInception` runs the FID Inception from a local
  TorchScript file (`inception-2015-12-05.pt`: pool3 2048 features for FID, its 1008-way softmax for IS);
  official inputs are resized to 256 first. On the shapes world, `JudgeFeatures` (below) stands in.
* BLEU-1/2 (`nltk` corpus BLEU, whitespace tokens), ROUGE-L F (`rouge-score`; official: the `rouge` package),
  sentence-embedding cosine (all-MiniLM-L6-v2 through transformers: mean pooling + L2 norm, which is what
  sentence-transformers does for that model).
* CLIP-F1 (MMDialog): per turn, text-text CLIP similarity, and image-image CLIP similarity where both have an image;
  a ground-truth image with no generated one is "missed" (-1), a generated image with none in the ground truth
  "spurious" (-2); precision = mean over generated images (spurious count 0), recall = mean over ground-truth
  images (missed count 0), F1 = 2PR / (P + R).
* OpenING rates: the share of answers with no image where one was asked for, and the share with no text.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

logger = logging.getLogger(__name__)

OFFICIAL_FID_RESIZE = 256  # metric.py: Resize(256) before the Inception (which itself works at 299)


def to_batch(images: Sequence[Image.Image], size: int | None = OFFICIAL_FID_RESIZE) -> Tensor:
    """PIL images -> (N, 3, size, size) float in [0, 1] (`normalize=True` inputs of torchmetrics)."""
    arrays = []
    for image in images:
        image = image.convert("RGB")
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.BICUBIC)
        arrays.append(np.asarray(image, dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _as_unit_float(images: Tensor) -> Tensor:
    """torchmetrics hands a custom IS extractor uint8 (0..255) and a custom FID extractor float (0..1)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


# --- image features -------------------------------------------------------------------------------------------


class TorchScriptInception(nn.Module):
    """The FID Inception-v3 of a local TorchScript file (the NVIDIA/clean-fid `inception-2015-12-05.pt`), which
    runs without torchvision. mode "features": (N, 2048) pool3; mode "logits": (N, 1008) log-probabilities (their
    softmax is the network's class distribution, which torchmetrics' IS applies)."""

    def __init__(self, path: str | Path, mode: str = "features") -> None:
        super().__init__()
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.mode = mode
        self.num_features = 2048 if mode == "features" else 1008

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        pixels = (_as_unit_float(images) * 255).round().clamp(0, 255).to(torch.uint8)
        if self.mode == "features":
            return self.net(pixels, return_features=True).double()
        probs = self.net(pixels, no_output_bias=True)  # (N, 1008) softmax
        return probs.clamp_min(1e-12).log().double()


# --- the shapes-world judge -------------------------------------------------------------------------------------

Judge = Callable[[Image.Image], tuple[str | None, str | None]]
"""An independent judge of a shapes-world image: image -> (colour, shape), None where nothing is drawn."""


@dataclass(frozen=True)
class JudgeSpace:
    """The classes a judge names (the world's colours and shapes)."""

    colors: tuple[str, ...]
    shapes: tuple[str, ...]

    @property
    def classes(self) -> list[tuple[str | None, str | None]]:
        return [(c, s) for c in self.colors for s in self.shapes] + [(None, None)]


class JudgeFeatures(nn.Module):
    """FID / IS features from a judge, for worlds with no real Inception: each image becomes the one-hot vector
    of its judged (colour, shape) class (+ "nothing drawn"), slightly smoothed so covariances are finite.
    mode "features" (FID) or "logits" (IS: log of the smoothed one-hot)."""

    def __init__(
        self, judge: Judge, space: JudgeSpace, mode: str = "features", smoothing: float = 0.01
    ) -> None:
        super().__init__()
        self.judge, self.space, self.mode, self.smoothing = judge, space, mode, smoothing
        self.num_features = len(space.classes)

    def forward(self, images: Tensor) -> Tensor:
        pixels = (_as_unit_float(images).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        index = {cls: i for i, cls in enumerate(self.space.classes)}
        rows = torch.full(
            (len(pixels), self.num_features), self.smoothing / self.num_features, dtype=torch.float64
        )
        for row, array in enumerate(pixels):  # a pixel rule per image: the judge is not batched
            colour, shape = self.judge(Image.fromarray(array))
            rows[row, index.get((colour, shape), self.num_features - 1)] += 1 - self.smoothing
        return rows.log() if self.mode == "logits" else rows


# --- FID / IS -------------------------------------------------------------------------------------------------


def fid_score(real: Tensor, fake: Tensor, feature: nn.Module, batch_size: int = 50) -> float:
    """torchmetrics FID of two image sets (N, 3, H, W) in [0, 1] with the given feature extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    # rank 0 scores alone: no cross-process sync (it would wait for ranks that already finished)
    metric = FrechetInceptionDistance(feature=feature, normalize=True, sync_on_compute=False)
    for start in range(0, len(real), batch_size):
        metric.update(real[start : start + batch_size], real=True)
    for start in range(0, len(fake), batch_size):
        metric.update(fake[start : start + batch_size], real=False)
    return float(metric.compute())


def inception_score(images: Tensor, feature: nn.Module, splits: int = 10, batch_size: int = 50
                    ) -> tuple[float, float]:  # fmt: skip
    """torchmetrics IS (mean, std over `splits`) of (N, 3, H, W) images in [0, 1]; runs on any device."""
    from torchmetrics.image.inception import InceptionScore

    metric = InceptionScore(
        feature=feature, normalize=True, splits=min(splits, max(1, len(images))), sync_on_compute=False
    )
    for start in range(0, len(images), batch_size):
        metric.update(images[start : start + batch_size])
    mean, std = metric.compute()
    return float(mean), float(0.0 if torch.isnan(std) else std)


# --- CLIP -------------------------------------------------------------------------------------------------------


class ClipScorer:
    """CLIP embeddings from a local transformers CLIP folder (e.g. clip-vit-large-patch14)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import CLIPModel, CLIPTokenizer

        try:
            from transformers import CLIPImageProcessorPil as ImageProcessor  # no torchvision backend
        except ImportError:  # older transformers
            from transformers import CLIPImageProcessor as ImageProcessor

        self.device = torch.device(device)
        self.model = CLIPModel.from_pretrained(str(folder)).to(self.device).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(str(folder))
        self.processor = ImageProcessor.from_pretrained(str(folder))

    @torch.no_grad()
    def image_embeds(self, images: Sequence[Image.Image]) -> Tensor:
        """(N, P) L2-normalised image embeddings."""
        pixels = self.processor(images=[i.convert("RGB") for i in images], return_tensors="pt")[
            "pixel_values"
        ]
        out = self.model.get_image_features(pixel_values=pixels.to(self.device))
        out = getattr(out, "pooler_output", out)
        return nn.functional.normalize(out.float(), dim=-1).cpu()

    @torch.no_grad()
    def text_embeds(self, texts: Sequence[str]) -> Tensor:
        """(N, P) L2-normalised text embeddings (truncated to CLIP's 77 tokens, as open_clip's tokenizer)."""
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
        out = getattr(out, "pooler_output", out)
        return nn.functional.normalize(out.float(), dim=-1).cpu()


def paired_cosine(a: Tensor, b: Tensor) -> Tensor:
    """(N,) cosine of row i of a with row i of b (rows already L2-normalised: their dot product)."""
    return (a * b).sum(dim=-1)


# --- text -------------------------------------------------------------------------------------------------------


def bleu_1_2(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[float, float]:
    """nltk corpus BLEU-1 and BLEU-2 over whitespace tokens (lower-cased)."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    refs = [[r.lower().split()] for r in references]
    hyps = [h.lower().split() for h in hypotheses]
    smooth = SmoothingFunction().method1
    return (
        float(corpus_bleu(refs, hyps, weights=(1.0,), smoothing_function=smooth)),
        float(corpus_bleu(refs, hyps, weights=(0.5, 0.5), smoothing_function=smooth)),
    )


def rouge_l(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (rouge-score, no stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses)]
    return float(np.mean(scores)) if scores else 0.0


class SentenceEmbedder:
    """A sentence-transformers model folder (all-MiniLM-L6-v2) through transformers: mean pooling + L2 norm."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.device = torch.device(device)
        self.model = AutoModel.from_pretrained(str(folder)).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> Tensor:
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
        )
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        hidden = self.model(**tokens).last_hidden_state  # (N, T, H)
        mask = tokens["attention_mask"][..., None].to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        return nn.functional.normalize(pooled.float(), dim=-1).cpu()


# --- MMDialog CLIP-F1 and the OpenING rates --------------------------------------------------------------------

MISSED, SPURIOUS = -1.0, -2.0


def clip_f1(image_sims: Sequence[float | None], has_gt: Sequence[bool], has_pred: Sequence[bool]
            ) -> dict[str, Any]:  # fmt: skip
    """Per turn: the image-image CLIP similarity (both images), MISSED (-1: ground truth has an image, the answer
    none) or SPURIOUS (-2: the answer has one, the ground truth none). Returns precision, recall, F1, markers."""
    markers: list[float | None] = []
    for sim, gt, pred in zip(image_sims, has_gt, has_pred):
        if gt and pred:
            markers.append(float(sim))
        elif gt:
            markers.append(MISSED)
        elif pred:
            markers.append(SPURIOUS)
        else:
            markers.append(None)
    matched = [m for m in markers if m is not None and m >= 0]
    predicted = sum(1 for m in markers if m is not None and m != MISSED)
    expected = sum(1 for m in markers if m is not None and m != SPURIOUS)
    precision = sum(matched) / predicted if predicted else 0.0
    recall = sum(matched) / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "markers": markers}


def opening_rates(
    asked_image: Sequence[bool], has_image: Sequence[bool], texts: Sequence[str]
) -> dict[str, float]:
    """OpenING's two user-facing rates: no image where one was asked for; no text at all."""
    asked = [has for ask, has in zip(asked_image, has_image) if ask]
    return {
        "no_image_rate": (sum(1 for has in asked if not has) / len(asked)) if asked else math.nan,
        "no_text_rate": (sum(1 for t in texts if not t.strip()) / len(texts)) if texts else math.nan,
    }
