"""Stage 1: simulator, plasticity rules, meta-tasks and meta-optimizers."""
