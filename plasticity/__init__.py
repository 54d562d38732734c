"""The ``plasticity`` command line, above the three stages (discover, distill, analysis)."""
