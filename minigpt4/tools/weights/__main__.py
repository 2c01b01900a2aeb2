import sys

from minigpt4.tools.weights.command import main

sys.exit(main())
