"""ONNX Runtime's CUDA execution provider: runs wherever onnxruntime-gpu sees a GPU (`make bench-gpu`'s machine)."""

import numpy as np
import onnxruntime as ort
import pytest

from edgeae.runtime import Autoencoder

HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA_EP, reason="ONNX Runtime here has no CUDAExecutionProvider (CPU wheel or no GPU)")
def test_cuda_provider_matches_the_cpu_provider(trained_run):
    frames = [np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8) for i in range(3)]
    with Autoencoder.load(trained_run, providers=["CPUExecutionProvider"]) as cpu, \
            Autoencoder.load(trained_run, providers=["CUDAExecutionProvider"]) as cuda:
        assert cuda.encoder.providers[0] == "CUDAExecutionProvider"
        z_cpu, size = cpu.encode(frames)
        z_cuda, _ = cuda.encode(frames)
        assert np.abs(z_cuda - z_cpu).max() / max(1.0, np.abs(z_cpu).max()) <= 1e-4
        assert np.abs(cuda.decode_batch(z_cpu) - cpu.decode_batch(z_cpu)).max() <= 1e-4


def test_default_providers_prefer_cuda_only_when_available():
    from edgeae.runtime.backends.onnxruntime import default_providers

    providers = default_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in providers) == HAS_CUDA_EP
