import os
import sys

# OpenMP threads that sleep when idle instead of spinning: on a machine shared with other jobs, spinning threads
# of one process starve the others' (a tiny training step measured 141 ms with spinning, 82 ms without, beside
# one busy process on 2 cores); on an idle machine it costs nothing measurable. Read once, when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from minigpt4.cli.quickstart import main  # after the OpenMP setting

sys.exit(main())
