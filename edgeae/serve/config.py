"""`ServeConfig`: everything `edgeae serve` was asked to do; the server process reads it back from JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgeae.errors import EdgeAEError

MAX_BATCH = 64           # frames per Triton batch: more buys a CPU nothing but memory
MAX_QUEUE_DELAY_US = 1_000_000
MAX_INSTANCES = 16
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # Triton model names become folder names and URL parts


@dataclass(frozen=True)
class ServeConfig:
    """What `edgeae serve` serves and how; saved as JSON for the server process (and beside nothing else)."""

    runs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()     # served name per run ("" or missing: the run folder's name)
    address: str = "127.0.0.1"      # loopback by default: 0.0.0.0 serves the network, on purpose only
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8              # Triton's max_batch_size; 1 = no dynamic batching
    queue_delay_us: int = 2000      # how long the dynamic batcher waits for more requests to batch
    instances: int = 1              # model instances per model (each its own ONNX Runtime sessions)
    backend: str = "auto"           # what runs the model inside the server (Autoencoder.load's backend)
    precision: str = ""             # "" = the tuned/default precision
    threads: int = 0                # ONNX Runtime intra-op threads per instance (0: the tuned or default)
    exit_timeout_s: int = 30        # SIGTERM: how long in-flight requests may take to finish
    log_file: str = ""              # Triton's own log ("" = the server's stdout)

    def validate(self) -> None:
        if not self.runs:
            raise EdgeAEError("no run to serve; pass one or more run folders after 'edgeae export'")
        for run in self.runs:
            if not Path(run).is_dir():
                raise EdgeAEError(f"run folder {run} not found; pass a run folder after 'edgeae export'")
        if len(self.names) > len(self.runs):
            raise EdgeAEError(f"{len(self.names)} --name given for {len(self.runs)} runs; give at most one per run")
        names = self.served_names()
        for name in names:
            if not re.fullmatch(NAME_PATTERN, name):
                raise EdgeAEError(f"served name {name!r} may use only letters, digits, '.', '_' and '-'; pass --name")
        if len(set(names)) != len(names):
            raise EdgeAEError(f"two runs would be served as {sorted(n for n in names if names.count(n) > 1)[0]!r}; "
                              "pass --name for each run")
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3 or not all(1 <= p <= 65535 for p in ports):
            raise EdgeAEError(f"HTTP, gRPC and metrics ports {ports} must be three different ports from 1 to 65535")
        checks = [(1 <= self.max_batch <= MAX_BATCH, f"--max-batch must be 1 to {MAX_BATCH}"),
                  (0 <= self.queue_delay_us <= MAX_QUEUE_DELAY_US, f"--queue-delay-us must be 0 to {MAX_QUEUE_DELAY_US}"),
                  (1 <= self.instances <= MAX_INSTANCES, f"--instances must be 1 to {MAX_INSTANCES}"),
                  (0 <= self.threads <= 256, "--threads must be 0 (the default) to 256"),
                  (self.exit_timeout_s >= 0, "--exit-timeout must be 0 or more seconds")]
        for ok, problem in checks:
            if not ok:
                raise EdgeAEError(problem)

    def served_names(self) -> list[str]:
        """The name each run is served under: its --name, else its folder's name."""
        given = list(self.names) + [""] * (len(self.runs) - len(self.names))
        return [name or Path(run).resolve().name for run, name in zip(self.runs, given)]

    def url(self) -> str:
        """The HTTP endpoint clients pass as --server (loopback when bound to every address)."""
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::", "") else self.address
        return f"{host}:{self.http_port}"
