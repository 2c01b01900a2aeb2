import os
import sys

# OpenMP threads that spin only briefly before sleeping: libgomp's default spin (300000 rounds) made a tiny
# training step ten times slower (430 ms instead of 40) beside one other busy process on 2 cores; 10000 rounds
# kept it at 42 ms there and costs about 5 % on an idle machine (passive waiting cost 60 %). Read once, when
# torch loads, so it is set before the import below.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from minigpt4.cli.quickstart import main  # after the OpenMP setting

sys.exit(main())
