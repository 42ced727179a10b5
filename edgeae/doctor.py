"""`edgeae doctor`: what this machine has, and what that means for backends. Torch-free."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:
        return None


def gpu_summary() -> str:
    if not shutil.which("nvidia-smi"):
        return "none found (no nvidia-smi)"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        return out or "nvidia-smi found, no GPU listed"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"nvidia-smi failed ({e})"


def cameras(max_index: int = 2) -> list[int]:
    import cv2

    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(i)
        cap.release()
    return found


def _cuda_device(tensorrt_flavour) -> str:
    device = tensorrt_flavour.cuda_device()
    if device is None:
        return "none found by cuda-python: TensorRT engines cannot run here (TensorRT-RTX can still build them)"
    return f"{device.name}, compute capability {device.compute_capability}"


def report(probe_cameras: bool = True) -> str:
    import cv2
    import onnxruntime as ort

    from edgeae.runtime import tensorrt_flavour

    lines = [f"python        {platform.python_version()} ({platform.machine()})",
             f"opencv        {cv2.__version__}",
             f"onnxruntime   {ort.__version__}; providers: {', '.join(ort.get_available_providers())}",
             f"torch         {_version('torch') or 'not installed (fine for the runtime)'}",
             f"tensorrt      {tensorrt_flavour.describe()}",
             f"cuda device   {_cuda_device(tensorrt_flavour)}",
             f"gpu           {gpu_summary()}"]
    if probe_cameras:
        cams = cameras()
        lines.append(f"cameras       {', '.join(map(str, cams)) if cams else 'none opened'}")
    return "\n".join(lines)
