"""The full benchmark suite (`make bench`): PyTorch references, task quality, reports and plots."""
