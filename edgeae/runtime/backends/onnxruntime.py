"""ONNX Runtime backend: CPU by default, the CUDA execution provider when it is available."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.base import Backend


OPTIMIZATION_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def default_providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    runs_concurrently = True  # InferenceSession.run is thread-safe; with 1 intra-op thread a call runs on its caller

    def __init__(self, session, path: Path):
        self.session = session
        self.path = path
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        self.providers = session.get_providers()

    @classmethod
    def load(cls, path: str | os.PathLike, providers: list[str] | None = None, threads: int = 0,
             spinning: bool = False, optimization: str = "all", streams: int = 1) -> "OnnxRuntimeBackend":
        """threads: intra-op threads (0 = ONNX Runtime's default, one per physical core).
        spinning, optimization ("basic", "extended", "all"): what the tuner (runtime/tuning.py) times per device.
        streams: calls that will run at once from that many threads; `threads` (or every usable core) is then
        split between them, each call getting threads // streams, at least 1."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; run 'edgeae export RUN' first")
        if optimization not in OPTIMIZATION_LEVELS:
            raise EdgeAEError(f"ONNX Runtime optimization {optimization!r} is not one of {', '.join(OPTIMIZATION_LEVELS)}")
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization])
        cls.check_streams(streams)
        if streams > 1:
            from edgeae.runtime.tuning import machine_threads

            threads = max(1, (threads or machine_threads()) // streams)
        options.intra_op_num_threads = threads
        # Off by default: with two sessions run back to back, the encoder's idle workers spin while the
        # decoder runs and steal its cores (768x576 on 2 cores: 46.7 ms spinning vs 35.5 ms not). One fused
        # session can gain from it on some CPUs; the tuner decides there.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3
        providers = providers or default_providers()
        if "CUDAExecutionProvider" in providers and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # onnxruntime-gpu ≥ 1.21 finds CUDA/cuDNN from pip's nvidia-* packages this way
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/InvalidProtobuf types
            detail = str(e).strip().splitlines()[0][:160]
            raise EdgeAEError(f"{path} is not a loadable ONNX model ({detail}); re-export it with 'edgeae export RUN'") from None
        backend = cls(session, path)
        backend.streams = streams
        return backend

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outputs))

    def close(self) -> None:
        self.session = None
