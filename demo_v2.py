"""MiniGPT-v2 chat demo: `python demo_v2.py [--cfg-path eval_configs/minigptv2_eval.yaml ...]` (minigpt4/cli/demo_v2.py)."""

import sys

from minigpt4.cli.demo_v2 import main

if __name__ == "__main__":
    sys.exit(main())
