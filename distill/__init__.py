"""Stage 2: distill a neural rule into closed-form equations and re-verify them in the simulator."""
