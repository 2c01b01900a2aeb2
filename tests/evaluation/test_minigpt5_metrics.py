"""Each MiniGPT-5 metric equals the library's (or the closed form's) result on small feature sets; FID of a set
against itself is ~0; the shapes judge reads the world's own drawings back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg
from torch import nn

from minigpt4.datasets.shapes.scene import COLORS, SHAPES, Scene, ShapeObject, draw
from minigpt4.evaluation import minigpt5_metrics as metrics
from minigpt4.evaluation.shapes_judge import SHAPES_SPACE, judge_shape


class Projection(nn.Module):
    """A fixed random feature extractor: 8x8 average pool, flatten, linear to 6 dims (float64)."""

    def __init__(self, out: int = 6) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.randn(3 * 8 * 8, out, generator=generator, dtype=torch.float64)
        self.num_features = out

    def forward(self, images):
        images = images.float() / 255 if images.dtype == torch.uint8 else images
        pooled = nn.functional.adaptive_avg_pool2d(images.double(), 8).flatten(1)
        return pooled @ self.weight


def random_images(n, seed):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_fid_equals_the_closed_form_and_is_zero_against_itself():
    feature = Projection()
    real, fake = random_images(20, 1), random_images(20, 2) ** 2
    ours = metrics.fid_score(real, fake, feature, batch_size=7)
    a, b = feature(real).numpy(), feature(fake).numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert abs(metrics.fid_score(real, real, feature)) < 1e-4


def test_inception_score_equals_the_closed_form():
    feature = Projection(out=5)
    images = random_images(12, 3)
    mean, _ = metrics.inception_score(images, feature, splits=1)
    # torchmetrics hands the extractor uint8 images (normalize=True): the same rounding here
    logits = feature((images * 255).byte()).numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    marginal = p.mean(0, keepdims=True)
    expected = math.exp(float((p * (np.log(p) - np.log(marginal))).sum(1).mean()))
    assert mean == pytest.approx(expected, rel=1e-5)


def test_judge_reads_the_world_back_and_its_features_give_fid_zero_on_itself():
    images = []
    for colour in COLORS:
        for shape in SHAPES:
            for size, box in ((32, [4, 6, 27, 28]), (64, [10, 12, 50, 60])):
                image = draw(Scene(1, "val", size, size, [ShapeObject(1, colour, shape, box)]))
                assert judge_shape(image) == (colour, shape), (colour, shape, size)
                images.append(image)
    assert judge_shape(Image.new("RGB", (32, 32), (255, 255, 255))) == (None, None)
    batch = metrics.to_batch(images, size=32)
    features = metrics.JudgeFeatures(judge_shape, SHAPES_SPACE)
    assert features(batch).shape == (len(images), 13)
    assert abs(metrics.fid_score(batch, batch, features)) < 1e-4
    mean, _ = metrics.inception_score(
        batch, metrics.JudgeFeatures(judge_shape, SHAPES_SPACE, "logits"), splits=1
    )
    assert mean == pytest.approx(12, rel=0.1)  # 12 equally frequent classes, each judged confidently


def test_text_metrics_equal_the_libraries():
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
    from rouge_score import rouge_scorer

    refs = ["a red circle on the left", "the blue square comes back"]
    hyps = ["a red circle", "then the blue square comes back again"]
    b1, b2 = metrics.bleu_1_2(refs, hyps)
    smooth = SmoothingFunction().method1
    split_refs, split_hyps = [[r.split()] for r in refs], [h.split() for h in hyps]
    assert b1 == corpus_bleu(split_refs, split_hyps, weights=(1.0,), smoothing_function=smooth)
    assert b2 == corpus_bleu(split_refs, split_hyps, weights=(0.5, 0.5), smoothing_function=smooth)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert metrics.rouge_l(refs, hyps) == pytest.approx(
        np.mean([scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps)])
    )
    assert metrics.bleu_1_2(["a b c d"], ["a b c d"]) == pytest.approx((1.0, 1.0))


def test_clip_scorer_equals_clipmodel(tmp_path):
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor as ImageProcessor
    from minigpt4.common.paths import REPO_ROOT

    tokenizer = CLIPTokenizer.from_pretrained(str(REPO_ROOT / "minigpt4/assets/tiny_sd/tokenizer"))
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=8,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    processor = ImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path)
    scorer = metrics.ClipScorer(tmp_path)
    images = [Image.new("RGB", (40, 30), (200, 10, 10)), Image.new("RGB", (30, 30), (10, 10, 200))]
    model = CLIPModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        want = model.get_image_features(pixel_values=pixels)
        want = nn.functional.normalize(getattr(want, "pooler_output", want), dim=-1)
        tokens = tokenizer(["a red thing", "a blue thing"], padding=True, return_tensors="pt")
        text = model.get_text_features(**tokens)
        text = nn.functional.normalize(getattr(text, "pooler_output", text), dim=-1)
    torch.testing.assert_close(scorer.image_embeds(images), want)
    clip_t = metrics.paired_cosine(
        scorer.text_embeds(["a red thing", "a blue thing"]), scorer.image_embeds(images)
    )
    torch.testing.assert_close(clip_t, nn.functional.cosine_similarity(text, want))


def test_clip_f1_markers_and_opening_rates():
    # turn 1 matched (0.8), turn 2 missed, turn 3 spurious, turn 4 text only
    out = metrics.clip_f1([0.8, None, None, None], [True, True, False, False], [True, False, True, False])
    assert out["markers"] == [0.8, metrics.MISSED, metrics.SPURIOUS, None]
    assert out["precision"] == pytest.approx(0.4) and out["recall"] == pytest.approx(0.4)
    assert out["f1"] == pytest.approx(0.4)
    rates = metrics.opening_rates([True, True, False, True], [True, False, True, False], ["a", "", "b", " "])
    assert rates == {"no_image_rate": pytest.approx(2 / 3), "no_text_rate": 0.5}
