"""Triton backend: the model runs on a Triton Inference Server (`edgeae serve`); this side sends tensors.

Unlike the other backends it loads no weights. `load(path, server=URL)` reads the run's local ONNX file for
its "edgeae.*" metadata (role, checkpoint: what ModelInfo and the tasks need here) and finds the served model
`<name>-<role>` (name: the run folder's, or `model=`) at the version of that checkpoint, so a client never
runs against another export of the model without being told. The naming rule (`served_name`,
`model_version`) lives here and `edgeae/serve/models.py` imports it. `load_fused` gives Autoencoder the
server's one-request image → image model.

A request the server cannot answer because it is gone (refused, reset, timed out, shutting down) raises
`ServerUnavailable`: the caller decides whether to wait or drop (edgeae/serve/client.py); any other refusal
is an EdgeAEError naming the model. Needs `tritonclient[http]` (pip install 'edgeae[serve]').
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.base import Backend
from edgeae.runtime.run_files import onnx_path

DEFAULT_SERVER = "127.0.0.1:8000"
VERSION_HEX_DIGITS = 12  # 48 bits of the sha256: a positive int64 for Triton, exact in JSON
# Triton's answers while a model or the server is going away or not there yet: retried like a lost connection.
UNAVAILABLE = ("unavailable", "not ready", "unknown model", "not found", "shutting down", "exiting", "failed to connect")


class ServerUnavailable(EdgeAEError):
    """The server did not answer: down, restarting or unreachable. Retrying later may succeed."""


def model_version(checkpoint_sha256: str) -> int:
    """The Triton model version of a checkpoint: its sha256's first 48 bits as an integer."""
    return int(checkpoint_sha256[:VERSION_HEX_DIGITS], 16)


def served_name(name: str, kind: str) -> str:
    """`<name>-<kind>`: the served model of this kind (encoder, decoder, reconstruct/denoise, anomaly)."""
    return f"{name}-{kind}"


def fused_kind(model_task: str) -> str:
    """The one-request image → image model's kind: `reconstruct`, or `denoise` for a denoiser."""
    return model_task


def read_metadata(path: Path) -> dict[str, str]:
    """The "edgeae.*" metadata of a local ONNX file, through ONNX Runtime (a base dependency)."""
    from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend

    local = OnnxRuntimeBackend.load(path, providers=["CPUExecutionProvider"], threads=1, optimization="basic")
    try:
        return {k: v for k, v in local.metadata.items() if k.startswith("edgeae.")}
    finally:
        local.close()


class TritonBackend(Backend):
    name = "triton"

    def __init__(self, url: str, model: str, version: int, inputs: list[str], outputs: list[str],
                 metadata: dict[str, str], max_batch: int, timeout_s: float):
        self.url, self.model, self.version = url, model, version
        self.input_names, self.output_names, self.metadata = inputs, outputs, metadata
        self.max_batch, self.timeout_s = max_batch, timeout_s
        self._local = threading.local()  # tritonclient's HTTP client (gevent) stays in the thread that made it
        self._clients: list = []

    @classmethod
    def model_file(cls, model_dir: str | os.PathLike, role: str, precision: str) -> Path:
        """The fp32 ONNX file whatever the precision: only its metadata is read; the server picks its own form."""
        return onnx_path(model_dir, role)

    @classmethod
    def load(cls, path: str | os.PathLike, server: str = DEFAULT_SERVER, model: str = "", kind: str = "",
             timeout_s: float = 10.0, threads: int = 0) -> "TritonBackend":
        """path: the run's encoder.onnx or decoder.onnx (its metadata: role and checkpoint); server: HOST:PORT
        of Triton's HTTP endpoint; model: the served name (default: the run folder's name); kind: the served
        model (default: the file's role); timeout_s: per request. threads: ignored (the server's setting)."""
        path = Path(path)
        if not path.is_file():
            raise EdgeAEError(f"model {path} not found; the triton backend reads the run's exported ONNX files "
                              "for their metadata: run 'edgeae export RUN' (or copy the run folder) here")
        metadata = read_metadata(path)
        sha = metadata.get("edgeae.checkpoint_sha256", "")
        if len(sha) != 64:
            raise EdgeAEError(f"{path} lacks edgeae.checkpoint_sha256 metadata; re-export it with 'edgeae export RUN'")
        name = served_name(model or path.resolve().parent.name, kind or metadata.get("edgeae.role", ""))
        backend = cls(server.removeprefix("http://"), name, model_version(sha), [], [], metadata, 1, timeout_s)
        backend._describe_model(sha)
        return backend

    @classmethod
    def load_fused(cls, encoder_path: str | os.PathLike, **options) -> "TritonBackend":
        """The server's image → image model of this run (reconstruct, or denoise): one request per batch."""
        task = read_metadata(Path(encoder_path)).get("edgeae.task", "reconstruct")
        return cls.load(encoder_path, kind=fused_kind(task), **options)

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                import tritonclient.http as http
            except ImportError:
                raise EdgeAEError("the triton backend needs tritonclient: pip install 'edgeae[serve]' "
                                  "(or 'tritonclient[http]')") from None
            client = http.InferenceServerClient(self.url, connection_timeout=self.timeout_s,
                                                network_timeout=self.timeout_s)
            self._local.client = client
            self._clients.append(client)
        return client

    def _forget_client(self) -> None:
        """After a failure: the next request opens a new connection (the server may be a new process)."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def _call(self, what: str, fn):
        """Run one client call; a lost server becomes ServerUnavailable, any other refusal an EdgeAEError."""
        try:
            return fn(self._client())
        except EdgeAEError:
            raise
        except Exception as e:  # socket errors, geventhttpclient's, tritonclient's InferenceServerException
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            if isinstance(e, (OSError, TimeoutError)) or any(w in text.lower() for w in UNAVAILABLE) \
                    or type(e).__module__.split(".")[0] in ("geventhttpclient", "gevent"):
                self._forget_client()
                raise ServerUnavailable(f"Triton server {self.url} unavailable ({what} {self.model}: {text})") from None
            raise EdgeAEError(f"Triton server {self.url} refused {what} {self.model} v{self.version}: {text}") from None

    def _describe_model(self, sha: str) -> None:
        """Check the server serves this checkpoint; take the model's tensor names and max batch from it."""
        meta = self._call("metadata of", lambda c: c.get_model_metadata(self.model))
        versions = [int(v) for v in meta.get("versions", [])]
        if self.version not in versions:
            raise EdgeAEError(f"Triton server {self.url} serves {self.model} versions {versions}, but this run's "
                              f"checkpoint is version {self.version} (sha256 {sha[:12]}…): the server runs another "
                              "export of the model; serve this run ('edgeae serve RUN') or use the run it serves")
        self.input_names = [t["name"] for t in meta["inputs"]]
        self.output_names = [t["name"] for t in meta["outputs"]]
        config = self._call("config of", lambda c: c.get_model_config(self.model, str(self.version)))
        self.max_batch = max(1, int(config.get("max_batch_size", 1)))

    def ready(self) -> bool:
        """Whether the server answers and has this model loaded (never raises)."""
        try:
            return bool(self._client().is_model_ready(self.model, str(self.version)))
        except Exception:
            self._forget_client()
            return False

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.request_all(feeds)

    def request_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Requests of any dtypes and batch sizes: more than the server's max batch go in slices, in order."""
        n = len(next(iter(feeds.values())))
        if n <= self.max_batch:
            return self.request(feeds)
        # the server's max batch bounds one request: send larger batches in slices, in order
        parts = [self.request({k: v[i:i + self.max_batch] for k, v in feeds.items()}) for i in range(0, n, self.max_batch)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def request(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request of any dtypes (the anomaly model takes uint8 frames), at most `max_batch` items."""
        import tritonclient.http as http
        from tritonclient.utils import np_to_triton_dtype

        inputs = []
        for name, array in feeds.items():
            item = http.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            item.set_data_from_numpy(np.ascontiguousarray(array), binary_data=True)
            inputs.append(item)
        outputs = [http.InferRequestedOutput(name, binary_data=True) for name in self.output_names]
        result = self._call("inference on", lambda c: c.infer(self.model, inputs, model_version=str(self.version),
                                                               outputs=outputs))
        return {name: result.as_numpy(name) for name in self.output_names}

    def close(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass
        self._clients = []
        self._local = threading.local()
