"""`python -m minigpt4.cli.pretrain_encoder [--steps N]`: the quickstart's tiny image encoder alone (CPU, ~1 min).

The recipe is `minigpt4/runners/encoder_recipe.py`; `make quickstart` runs it as its second step.
"""

from __future__ import annotations

import argparse
import logging

from minigpt4.cli.quickstart import pretrain_image_encoder
from minigpt4.runners.encoder_recipe import EncoderRecipe


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(
        description="Pretrain the tiny EVA ViT the shapes configs load (CPU, ~1 min): the world is found through "
        "SHAPES_WORLD, the file goes to $MINIGPT4_QUICKSTART/tiny_eva_vit.pth (defaults under outputs/)."
    )
    parser.add_argument("--steps", type=int, default=EncoderRecipe.steps)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    print(pretrain_image_encoder(EncoderRecipe(steps=args.steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
