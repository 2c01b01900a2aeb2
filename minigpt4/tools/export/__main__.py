import sys

from minigpt4.tools.export.command import main

sys.exit(main())
