"""Draw the demo example images (no downloads): python examples/make_examples.py

- examples/*.png: everyday synthetic scenes (cars, flowers, ...) the pages show for real checkpoints;
- examples/shapes_world/*.png + truth.json: held-out scenes of the quickstart's shapes world, drawn by the
  world's own code (`minigpt4.datasets.shapes.scene`), which the tiny quickstart models answer; truth.json
  holds every object's colour, shape and box (pixels of the saved image) for the browser tests.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = (320, 240)


def shapes(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 320, 240), fill=(235, 235, 220))
    d.ellipse((30, 40, 130, 140), fill=(220, 40, 40))
    d.rectangle((170, 60, 280, 170), fill=(40, 80, 200))
    d.polygon([(110, 220), (160, 150), (210, 220)], fill=(40, 170, 70))


def street(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 320, 130), fill=(150, 200, 240))
    d.rectangle((0, 130, 320, 240), fill=(90, 90, 95))
    d.rectangle((0, 178, 320, 184), fill=(240, 240, 240))
    for x, colour in ((20, (200, 30, 30)), (180, (30, 90, 200))):
        d.rounded_rectangle((x, 145, x + 110, 200), radius=12, fill=colour)
        d.rectangle((x + 20, 125, x + 85, 150), fill=colour)
        d.ellipse((x + 10, 188, x + 36, 214), fill=(20, 20, 20))
        d.ellipse((x + 74, 188, x + 100, 214), fill=(20, 20, 20))


def garden(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 320, 140), fill=(170, 215, 245))
    d.rectangle((0, 140, 320, 240), fill=(70, 160, 60))
    for x, petal in ((60, (220, 30, 50)), (160, (250, 210, 40)), (250, (160, 80, 200))):
        d.line((x, 200, x, 120), fill=(30, 110, 30), width=5)
        for dx, dy in ((-14, 0), (14, 0), (0, -14), (0, 14)):
            d.ellipse((x + dx - 12, 110 + dy - 12, x + dx + 12, 110 + dy + 12), fill=petal)
        d.ellipse((x - 8, 102, x + 8, 118), fill=(250, 240, 200))


def kitchen(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 320, 240), fill=(245, 235, 210))
    d.rectangle((0, 150, 320, 240), fill=(150, 100, 60))
    d.rectangle((40, 110, 120, 210), fill=(230, 230, 235), outline=(90, 90, 90), width=3)  # a mug
    d.arc((100, 130, 150, 180), start=270, end=90, fill=(90, 90, 90), width=6)
    d.ellipse((190, 120, 290, 170), fill=(250, 250, 250), outline=(120, 120, 120), width=3)  # a plate
    d.ellipse((220, 132, 260, 158), fill=(230, 150, 40))


def beach(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((0, 0, 320, 110), fill=(120, 190, 250))
    d.ellipse((240, 20, 290, 70), fill=(255, 220, 60))
    d.rectangle((0, 110, 320, 160), fill=(30, 110, 190))
    d.rectangle((0, 160, 320, 240), fill=(240, 215, 150))
    d.line((80, 220, 80, 150), fill=(120, 80, 40), width=4)
    d.pieslice((30, 120, 130, 190), start=180, end=360, fill=(230, 60, 60))


# held-out scenes of the quickstart's world (the tiny models never saw them), one per colour, shapes varied
SHAPES_WORLD_DIR = HERE / "shapes_world"
SHAPES_WORLD_PICKS = (("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle"))
SHAPES_WORLD_SCALE = 3  # drawn at 3x the world's 112 px so the page shows them crisp (the model resizes back)


def shapes_world_examples() -> dict[str, dict]:
    """Write the shapes-world examples and truth.json; returns the truth."""
    from minigpt4.cli.quickstart import WORLD
    from minigpt4.datasets.shapes.scene import WorldConfig, draw, make_scenes

    heldout = [
        scene for scene in make_scenes(WorldConfig.from_size("small", **WORLD)) if scene.split == "heldout"
    ]
    SHAPES_WORLD_DIR.mkdir(exist_ok=True)
    truth = {}
    for color, shape in SHAPES_WORLD_PICKS:
        scene = next(s for s in heldout if (s.objects[0].color, s.objects[0].shape) == (color, shape))
        k = SHAPES_WORLD_SCALE
        scaled = replace(
            scene,
            width=scene.width * k,
            height=scene.height * k,
            objects=[replace(obj, bbox=[v * k for v in obj.bbox]) for obj in scene.objects],
        )
        name = f"{color}_{shape}.png"
        draw(scaled).save(SHAPES_WORLD_DIR / name, optimize=True)
        truth[name] = {
            "image_id": scene.image_id,
            "width": scaled.width,
            "height": scaled.height,
            "objects": [{"color": o.color, "shape": o.shape, "bbox_xywh": o.bbox} for o in scaled.objects],
        }
    (SHAPES_WORLD_DIR / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


SCENES = {"shapes": shapes, "street": street, "garden": garden, "kitchen": kitchen, "beach": beach}


def main() -> None:
    for name, draw_scene in SCENES.items():
        image = Image.new("RGB", SIZE)
        draw_scene(ImageDraw.Draw(image))
        image.save(HERE / f"{name}.png", optimize=True)
    shapes_world_examples()


if __name__ == "__main__":
    main()
