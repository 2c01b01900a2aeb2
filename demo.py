"""MiniGPT-4 chat demo: `python demo.py [--cfg-path eval_configs/minigpt4_eval.yaml ...]` (minigpt4/cli/demo_v1.py)."""

import sys

from minigpt4.cli.demo_v1 import main

if __name__ == "__main__":
    sys.exit(main())
