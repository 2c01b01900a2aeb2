"""OKVQA, VizWiz, IconVQA, GQA, VSR, Hateful Memes (+ VQAv2, COCO caption) evaluation (official command line)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from minigpt4.cli.evaluate import main_vqa

if __name__ == "__main__":
    sys.exit(main_vqa())
