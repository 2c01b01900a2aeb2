"""MiniGPT-5 demo: `python demo_minigpt5.py [--cfg-path eval_configs/minigpt5_eval.yaml ...]` (minigpt4/cli/demo_minigpt5.py)."""

import sys

from minigpt4.cli.demo_minigpt5 import main

if __name__ == "__main__":
    sys.exit(main())
