"""Stage 3: comparisons, figures, LaTeX tables and reports, from a run directory."""
