import sys

from minigpt4.quickstart.pipeline import main

sys.exit(main())
