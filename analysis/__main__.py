"""``python -m analysis RUN_DIR``: figures, tables and the report of a run."""
import sys

from plasticity.cli import main

sys.exit(main(["report", *sys.argv[1:]]))
