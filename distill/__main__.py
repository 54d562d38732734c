"""``python -m distill RUN_DIR [--backend NAME]`` and ``python -m distill verify RUN_DIR``."""
import sys

from plasticity.cli import main

args = sys.argv[1:]
sys.exit(main(args if args[:1] == ["verify"] else ["distill", *args]))
