"""Torch-free runtime: backends, the autoencoder runtime, frame sources and tasks.

Nothing under edgeae.runtime may import torch, edgeae.training or edgeae.export: edge devices
install the runtime alone.
"""

from edgeae.runtime.autoencoder import Autoencoder

__all__ = ["Autoencoder"]
