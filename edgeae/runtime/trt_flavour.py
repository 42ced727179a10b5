"""Which TensorRT is installed: standard `tensorrt` (JetPack, datacenter) or TensorRT-RTX."""

from __future__ import annotations

import importlib

FLAVOURS = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx_bindings"}


def available() -> dict[str, str]:
    """flavour → version for each TensorRT flavour that imports here."""
    found = {}
    for flavour, module in FLAVOURS.items():
        try:
            found[flavour] = importlib.import_module(module).__version__
        except Exception:
            continue
    return found


def describe() -> str:
    found = available()
    return ", ".join(f"{k} {v}" for k, v in found.items()) if found else "none (ONNX Runtime backends only)"
