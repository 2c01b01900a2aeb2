import sys

from minigpt4.tools.parity.cli import main

sys.exit(main())
