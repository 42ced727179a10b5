"""Training stage: data, noise, model definitions and the training loop (needs torch)."""
