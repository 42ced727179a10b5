"""Shared fixtures: small real inputs made once per session.

`footage` is the real OpenCV sample data fetched by `make data`; under CI it must be there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOOTAGE_DIR = Path(os.environ.get("EDGEAE_DATA", ROOT / "data" / "opencv"))


@pytest.fixture(scope="session")
def footage() -> Path:
    """Folder holding vtest.avi and the photos; skipped locally when absent, an error in CI."""
    if not (FOOTAGE_DIR / "vtest.avi").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"real footage missing at {FOOTAGE_DIR}: CI must run 'make data' first")
        pytest.skip(f"real footage not fetched to {FOOTAGE_DIR}; run 'make data'")
    return FOOTAGE_DIR


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    """A 24-frame 64x96 video with a moving square, written with OpenCV."""
    path = tmp_path_factory.mktemp("video") / "moving_square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(24):
        frame = np.full((64, 96, 3), 40, np.uint8)
        cv2.rectangle(frame, (4 + 3 * i, 20), (20 + 3 * i, 36), (30, 200, 240), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A 2-epoch seed model on synthetic data, exported to ONNX (parity checked on export)."""
    from edgeae.export.onnx_export import ExportConfig, export_onnx
    from edgeae.training.train import TrainConfig, train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = TrainConfig(data="synthetic", epochs=2, samples_per_epoch=1024, val_samples=256, max_images=24)
    train(cfg, run, progress=False)
    export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32), (2, 48, 80))), progress=False)
    return run


@pytest.fixture(scope="session")
def vtest_run(footage, tmp_path_factory) -> Path:
    """A seed model trained for ~15 s on vtest.avi crops, exported (camera-runtime tests use it).

    One torch thread: on a 2-core CPU shared with other work, two threads ran 20× slower.
    """
    import torch

    from edgeae.export.onnx_export import ExportConfig, export_onnx
    from edgeae.training.train import TrainConfig, train

    run = tmp_path_factory.mktemp("runs") / "vtest"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(data=str(footage / "vtest.avi"), epochs=6, samples_per_epoch=2048, val_samples=256,
                          max_images=24, batch_size=32, lr=3e-3)
        train(cfg, run, progress=False)
        export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),)), progress=False)
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def tensorrt_rtx():
    """The tensorrt_rtx_bindings module. It builds engines on a CPU and `make install` installs it, so CI
    must have it; skipped locally otherwise."""
    try:
        import tensorrt_rtx_bindings
    except Exception:
        if os.environ.get("CI"):
            pytest.fail("tensorrt_rtx_bindings missing: CI must install the tensorrt-rtx extra ('make install')")
        pytest.skip("TensorRT-RTX not installed; pip install tensorrt-rtx-cu13-libs tensorrt-rtx-cu13-bindings")
    return tensorrt_rtx_bindings


@pytest.fixture(scope="session")
def built_engines(trained_run, tensorrt_rtx, tmp_path_factory) -> Path:
    """A copy of `trained_run` with fp32 and fp16 TensorRT-RTX engines (profile up to 4x256x256)."""
    import shutil

    from edgeae.export.tensorrt_build import BuildConfig, build_run

    run = tmp_path_factory.mktemp("engines") / "run"
    shutil.copytree(trained_run, run)
    for precision in ("fp32", "fp16"):
        build_run(run, BuildConfig(precision=precision, flavour="tensorrt-rtx", opt_shape=(1, 64, 96),
                                   max_shape=(4, 256, 256)), progress=False)
    return run


# The base install (what a device has) has neither torch nor onnx: importing either raises, as it would there.
BLOCK_DEVICE_ABSENT = textwrap.dedent("""
    import sys
    class BlockAbsentOnDevice:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "onnx"):
                raise ImportError(name + " is not installed on this device")
    sys.meta_path.insert(0, BlockAbsentOnDevice())
""")


@pytest.fixture(scope="session")
def run_without_torch():
    """Run Python `code` in a subprocess where importing torch or onnx raises; returns the CompletedProcess."""
    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BLOCK_DEVICE_ABSENT + textwrap.dedent(code)],
                              capture_output=True, text=True)
    return run
