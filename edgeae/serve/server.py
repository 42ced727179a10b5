"""The server process: `python -m edgeae.serve.server CONFIG.json`, started by `edgeae serve` under an
interpreter that can host Triton's Python backend (edgeae/serve/host.py). Imports PyTriton; never torch.

It binds every run's models (edgeae/serve/models.py) into one PyTriton `Triton`, with Triton's dynamic
batcher (max batch, queue delay) and `instances` copies of each model, prints one JSON line
{"event": "ready", …} on stdout once every model is loaded, and serves until SIGTERM or SIGINT. Then
Triton stops accepting requests and waits up to `exit_timeout_s` for those in flight, which are answered.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import defaultdict

import numpy as np

from edgeae.config import load_config
from edgeae.serve.config import ServeConfig
from edgeae.serve.models import RunModels, served_name


def group_by_shape(requests: list) -> dict[tuple, list[int]]:
    """Request indices by their inputs' shapes: the batcher may queue frames of several sizes together."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, request in enumerate(requests):
        groups[tuple((name, request[name].shape[1:]) for name in sorted(request.keys()))].append(i)
    return groups


def batched(function):
    """A PyTriton infer callable over `function`: same-shape requests concatenated into one call, split back."""
    def infer(requests: list) -> list[dict]:
        responses: list = [None] * len(requests)
        for indices in group_by_shape(requests).values():
            names = list(requests[indices[0]].keys())
            feeds = {n: np.concatenate([requests[i][n] for i in indices]) for n in names}
            outputs = function(feeds)
            start = 0
            for i in indices:
                n = len(requests[i][names[0]])
                responses[i] = {k: v[start:start + n] for k, v in outputs.items()}
                start += n
        return responses
    return infer


def bind_run(triton, run: str, name: str, cfg: ServeConfig) -> list[dict]:
    """Bind one run's models with `cfg.instances` instances each; returns what was bound."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    instances = [RunModels(run, cfg.backend, cfg.precision, cfg.threads) for _ in range(cfg.instances)]
    first = instances[0]
    batcher = DynamicBatcher(max_queue_delay_microseconds=cfg.queue_delay_us)
    bound = []
    for kind, spec in first.specs.items():
        tensor = lambda t: Tensor(name=t.name, dtype=np.dtype(t.dtype).type, shape=t.shape)
        model = served_name(name, kind)
        triton.bind(model_name=model, infer_func=[batched(m.function(kind)) for m in instances],
                    inputs=[tensor(t) for t in spec.inputs], outputs=[tensor(t) for t in spec.outputs],
                    model_version=first.version, strict=True,
                    config=ModelConfig(batching=True, max_batch_size=cfg.max_batch, batcher=batcher))
        bound.append({"model": model, "version": first.version, "run": run,
                      "checkpoint_sha256": first.ae.info.checkpoint_sha256, "form": first.ae.describe()})
    return bound


def triton_config(cfg: ServeConfig):
    from pytriton.triton import TritonConfig

    return TritonConfig(http_address=cfg.address, http_port=cfg.http_port, grpc_address=cfg.address,
                        grpc_port=cfg.grpc_port, metrics_address=cfg.address, metrics_port=cfg.metrics_port,
                        exit_timeout_secs=cfg.exit_timeout_s, log_file=cfg.log_file or None, log_verbose=0)


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, `kill`) takes PyTriton's Ctrl-C path: Triton drains in-flight requests, then stops."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def serve(cfg: ServeConfig) -> int:
    from pytriton.triton import Triton

    cfg.validate()
    _stop_on_sigterm()
    with Triton(config=triton_config(cfg)) as triton:
        models = [m for run, name in zip(cfg.runs, cfg.served_names()) for m in bind_run(triton, run, name, cfg)]
        triton.run()
        print(json.dumps({"event": "ready", "http": f"{cfg.address}:{cfg.http_port}",
                          "grpc": f"{cfg.address}:{cfg.grpc_port}", "metrics": f"{cfg.address}:{cfg.metrics_port}",
                          "max_batch": cfg.max_batch, "queue_delay_us": cfg.queue_delay_us,
                          "instances": cfg.instances, "models": models}), flush=True)
        triton.serve()  # returns after SIGTERM/SIGINT, or when Triton or a model's process died
    print(json.dumps({"event": "stopped"}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m edgeae.serve.server CONFIG.json (written by 'edgeae serve')", file=sys.stderr)
        return 2
    from edgeae.errors import EdgeAEError

    try:
        return serve(load_config(ServeConfig, argv[0]))
    except EdgeAEError as e:
        print(f"edgeae serve: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
