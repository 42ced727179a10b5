"""`edgeae doctor`: what this machine has, and what that means for backends. Torch-free.

Every probe returns plain data and never raises: a doctor that crashes on a broken device is no help.
"""

from __future__ import annotations

import importlib
import platform
import re
import shutil
import subprocess

# OpenCV's build information lines that decide which sources open: GStreamer for CSI cameras and
# RTSP pipelines, FFmpeg for files and streams, V4L/V4L2 for USB cameras.
VIDEO_IO = ("GStreamer", "FFMPEG", "v4l/v4l2")
# TensorRT-RTX 1.7 refuses to run engines elsewhere (its message on an H100, compute capability 9.0).
RTX_COMPUTE_CAPS = ("8.0", "8.6", "8.9", "12.0", "12.1")


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:
        return None


def tensorrt_flavours() -> dict[str, str]:
    """TensorRT flavour → version for each flavour installed here (standard TensorRT, TensorRT-RTX)."""
    from edgeae.runtime import tensorrt_flavour

    return tensorrt_flavour.available()


def opencv_video_io(build_info: str | None = None) -> dict[str, str]:
    """{"GStreamer": "YES (1.20.3)", "FFMPEG": "NO", …} from cv2.getBuildInformation()."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    found = {}
    for name in VIDEO_IO:
        match = re.search(rf"^\s*{re.escape(name)}:\s*(.+)$", build_info, re.MULTILINE)
        found[name] = match.group(1).strip() if match else "NO"
    return found


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except Exception:
        return []


def gpus() -> list[dict[str, str]]:
    """[{"name", "compute_cap", "driver"}] from nvidia-smi; Jetson has no nvidia-smi, so also /proc/device-tree."""
    found = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout
            for line in out.strip().splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 3:
                    found.append(dict(zip(("name", "compute_cap", "driver"), parts)))
        except (OSError, subprocess.TimeoutExpired):
            pass
    return found or _cuda_python_gpus() or _jetson_gpu()


def _cuda_python_gpus() -> list[dict[str, str]]:
    try:
        from cuda.bindings import runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        if err != cudart.cudaError_t.cudaSuccess:
            return []
        found = []
        for i in range(count):
            err, prop = cudart.cudaGetDeviceProperties(i)
            if err == cudart.cudaError_t.cudaSuccess:
                name = prop.name.split(b"\0")[0].decode(errors="replace")
                found.append({"name": name, "compute_cap": f"{prop.major}.{prop.minor}", "driver": "cuda-python"})
        return found
    except Exception:  # not installed, or no driver
        return []


def _jetson_gpu() -> list[dict[str, str]]:
    try:
        with open("/proc/device-tree/model") as f:
            model = f.read().strip("\x00\n ")
    except OSError:
        return []
    if "jetson" not in model.lower() and "nvidia" not in model.lower():
        return []
    # Orin is sm_87, Xavier sm_72; the model string names the module.
    cap = "8.7" if "orin" in model.lower() else "7.2" if "xavier" in model.lower() else "?"
    return [{"name": model, "compute_cap": cap, "driver": "JetPack"}]


def gpu_summary() -> str:
    found = gpus()
    if not found:
        return "none found (no nvidia-smi, not a Jetson)"
    return "; ".join(f"{g['name']}, compute capability {g['compute_cap']}, driver {g['driver']}" for g in found)


def cameras(max_index: int = 2) -> list[int]:
    import cv2

    found = []
    logging = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    if logging:  # a missing camera is an answer here, not a warning
        previous = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        for i in range(max_index):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(i)
            cap.release()
    finally:
        if logging:
            logging.setLogLevel(previous)
    return found


def what_will_run(providers: list[str], flavours: dict[str, str], gpu_list: list[dict[str, str]]) -> list[str]:
    """One line per backend: whether it runs here, on what, and in which precisions."""
    lines = ["onnxruntime   CPU: fp32, fp16 ONNX, int8 (Q/DQ ONNX)"]
    if "CUDAExecutionProvider" in providers:
        lines.append("onnxruntime   CUDA: fp32, fp16" + (" (GPU found)" if gpu_list else " (but no GPU was found)"))
    if not flavours:
        lines.append("tensorrt      no: not installed (Jetson: JetPack's python3-libnvinfer; x86: pip install tensorrt or tensorrt-rtx)")
    elif not gpu_list:
        lines.append(f"tensorrt      engines can be built ({', '.join(flavours)}) but not run: no GPU found")
    else:
        lines.append(_tensorrt_line(flavours, gpu_list[0]["compute_cap"]))
    return lines


def _tensorrt_line(flavours: dict[str, str], compute_cap: str) -> str:
    if set(flavours) == {"tensorrt-rtx"} and compute_cap not in RTX_COMPUTE_CAPS:
        return (f"tensorrt      no: TensorRT-RTX builds engines but runs them only on compute capability "
                f"{', '.join(RTX_COMPUTE_CAPS)}; this GPU is {compute_cap} (install standard TensorRT)")
    return (f"tensorrt      yes ({', '.join(flavours)}): fp32, fp16, int8 (Q/DQ ONNX); "
            "engines are built on this device on first run")


def cuda_device_summary() -> str:
    from edgeae.runtime import tensorrt_flavour

    device = tensorrt_flavour.cuda_device()
    if device is None:
        return "none found by cuda-python: TensorRT engines cannot run here (TensorRT-RTX can still build them)"
    return f"{device.name}, compute capability {device.compute_capability}"


def cpu_summary() -> str:
    from edgeae.runtime.tuning import cpu_info, machine_threads

    return f"{cpu_info().describe()}; {machine_threads()} usable cores"


def model_form(run: str) -> str:
    """Which form and settings `Autoencoder.load(RUN)` runs here, and whether RUN/tuning.json chose them."""
    from edgeae.errors import EdgeAEError
    from edgeae.runtime.autoencoder import Autoencoder

    try:
        with Autoencoder.load(run) as ae:
            return ae.describe()
    except (EdgeAEError, ImportError) as e:
        return f"cannot load {run}: {e}"


def serve_lines() -> list[str]:
    """Whether `edgeae serve` can start Triton here, under which Python, and why not; and the client's package."""
    import os
    import sys

    from edgeae.serve import host

    pythons = [os.environ.get("SERVE_PYTHON", ""), str(host.project_serve_python()), sys.executable]
    pythons = [p for p in dict.fromkeys(pythons) if p and (p == sys.executable or os.path.exists(p))]
    lines = []
    for python in pythons:
        label = "this python" if python == sys.executable else "serve python"
        lines.append(f"{'triton serve':14}{label}: {host.probe(python).describe()}")
    try:
        from importlib.metadata import version

        client = version("tritonclient")
    except Exception:
        client = None
    lines.append(f"{'triton client':14}{'tritonclient ' + client if client else 'not installed'}"
                 f"{'' if client else ' (pip install edgeae[serve])'}: edgeae run --backend triton --server HOST:PORT")
    return lines


def report(probe_cameras: bool = True, run: str | None = None) -> str:
    import cv2

    providers = onnxruntime_providers()
    flavours = tensorrt_flavours()
    gpu_list = gpus()
    video_io = opencv_video_io()
    lines = [f"python        {platform.python_version()} ({platform.machine()})",
             f"cpu           {cpu_summary()}",
             f"opencv        {cv2.__version__}; " + ", ".join(f"{k} {v}" for k, v in video_io.items()),
             f"onnxruntime   {_version('onnxruntime') or 'not installed'}; providers: {', '.join(providers) or 'none'}",
             f"torch         {_version('torch') or 'not installed (fine for the runtime)'}",
             f"tensorrt      {', '.join(f'{k} {v}' for k, v in flavours.items()) or 'none (ONNX Runtime backends only)'}",
             f"cuda device   {cuda_device_summary()}",
             f"gpu           {gpu_summary()}"]
    if probe_cameras:
        cams = cameras()
        lines.append(f"cameras       {', '.join(map(str, cams)) if cams else 'none opened'}")
    try:
        lines += serve_lines()
    except Exception as e:  # a doctor that crashes is no help
        lines.append(f"triton serve  not checked ({type(e).__name__}: {e})")
    if not video_io["GStreamer"].upper().startswith("YES"):
        lines.append("note          this OpenCV has no GStreamer: CSI cameras (nvarguscamerasrc) will not open; on Jetson use JetPack's OpenCV")
    lines += ["", "what will run here:"] + ["  " + line for line in what_will_run(providers, flavours, gpu_list)]
    if run:
        lines += ["", f"{run} runs as: {model_form(run)}"]
    return "\n".join(lines)
