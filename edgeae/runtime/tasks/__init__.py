"""Tasks built on the autoencoder runtime: compression, augmentation, and more."""
