"""Reference solutions: the degradation ablation."""
