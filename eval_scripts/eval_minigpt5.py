"""MiniGPT-5 evaluation: CC3M, VIST, MMDialog (official metric.py metrics) and the shapes world."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from minigpt4.cli.evaluate_minigpt5 import main

if __name__ == "__main__":
    sys.exit(main())
