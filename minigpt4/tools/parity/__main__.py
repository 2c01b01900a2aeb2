import sys

from minigpt4.tools.parity.command import main

sys.exit(main())
