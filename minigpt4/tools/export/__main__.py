import sys

from minigpt4.tools.export.cli import main

sys.exit(main())
