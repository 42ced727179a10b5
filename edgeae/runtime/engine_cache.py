"""Engine sidecars and the engine cache.

Beside every `<role>.<precision>.engine` lies `<role>.<precision>.engine.json`:
    engine, role, precision          which file this is
    flavour, flavour_version         the TensorRT that built it ("tensorrt" / "tensorrt-rtx")
    device                           the build GPU and its compute capability, or "AOT, no GPU"
    compute_capabilities             where it runs ("8.0", "8.6", … for TensorRT-RTX; the build GPU's otherwise)
    profile                          input name and min/opt/max NCHW shapes
    onnx, onnx_sha256                the source ONNX
    workspace_mb, timing_cache       builder settings
    build_seconds, built_at          how long the build took, when
    engine_sha256                    of the engine file: a replaced engine is not a cache hit, and the
                                     TensorRT backend refuses to load an engine that does not match it
    metadata                         the ONNX's "edgeae.*" metadata, for the runtime
The cache key is the subset of these that determines the engine (KEY_FIELDS): a build whose key equals
the existing sidecar's, with the engine file unchanged, is a cache hit and builds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgeae.config import atomic_write_json

KEY_FIELDS = ("flavour", "flavour_version", "device", "compute_capabilities", "precision", "profile", "onnx_sha256",
              "workspace_mb")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(engine: Path) -> Path:
    return Path(f"{engine}.json")


def cache_key(sidecar: dict) -> dict:
    return {k: sidecar.get(k) for k in KEY_FIELDS}


def cache_miss_reason(engine: Path, key: dict) -> str | None:
    """None when `engine` was built with exactly `key` and is unchanged since; else why it must be built."""
    side = sidecar_path(engine)
    if not engine.is_file() or not side.is_file():
        return "no engine yet"
    try:
        old = json.loads(side.read_text())
    except json.JSONDecodeError:
        return "sidecar unreadable"
    changed = [k for k in KEY_FIELDS if old.get(k) != key[k]]
    if changed:
        return f"{', '.join(changed)} changed"
    if old.get("engine_sha256") != sha256_file(engine):
        return "engine file changed"
    return None


def write_sidecar(engine: Path, key: dict, **extra) -> dict:
    """Write the sidecar for a freshly built `engine`; returns it."""
    sidecar = {"engine": engine.name, **key, **extra, "engine_sha256": sha256_file(engine)}
    atomic_write_json(sidecar_path(engine), json.loads(json.dumps(sidecar)))
    return sidecar
