"""``python -m discover CONFIG [--out DIR]``: the discover stage alone."""
import sys

from plasticity.cli import main

sys.exit(main(["discover", *sys.argv[1:]]))
