import sys

from minigpt4.cli.quickstart import main

sys.exit(main())
