"""RefCOCO, RefCOCO+, RefCOCOg evaluation (official command line: --cfg-path, --dataset a,b,c)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from minigpt4.cli.evaluate import main_ref

if __name__ == "__main__":
    sys.exit(main_ref())
