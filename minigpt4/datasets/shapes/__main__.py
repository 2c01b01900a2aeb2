"""`python -m minigpt4.datasets.shapes --out DIR [--size small|medium|large] [--seed 0] [--image-size N] ...`"""

from __future__ import annotations

import argparse
import logging

from minigpt4.datasets.shapes.scene import SIZES
from minigpt4.datasets.shapes.world import generate_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigpt4.datasets.shapes", description=__doc__)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--num-heldout", type=int, default=None)
    parser.add_argument("--min-objects", type=int, default=None)
    parser.add_argument("--max-objects", type=int, default=None)
    parser.add_argument("--num-shards", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        info = generate_world(
            args.out,
            size=args.size,
            seed=args.seed,
            image_size=args.image_size,
            num_train=args.num_train,
            num_heldout=args.num_heldout,
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            num_shards=args.num_shards,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"shapes world: {len(info.scenes)} images in {info.root} ({info.seconds:.1f} s); config: {info.datasets_yaml}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
