"""edgeae: convolutional autoencoders from PyTorch training to edge devices."""

__version__ = "0.1.0"
