import sys

from minigpt4.tools.weights.cli import main

sys.exit(main())
