"""Train a MiniGPT model: `torchrun --nproc-per-node N train.py --cfg-path train_configs/<stage>.yaml [--options k=v ...]`."""

from __future__ import annotations

import sys

from minigpt4.cli.train import train_main

if __name__ == "__main__":
    sys.exit(train_main())
