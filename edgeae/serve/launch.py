"""`edgeae serve`: start the Triton server process under an interpreter that can host it, and stop it gracefully.

The edgeae venv's own Python often cannot host Triton's Python backend (edgeae/serve/host.py says why), and
PyTriton pins numpy < 2, so the server runs in its own process from its own environment (`make serve-env`
builds .venv-serve from a capable interpreter). This side needs neither PyTriton nor torch: it picks the
interpreter, writes the ServeConfig as JSON, starts `python -m edgeae.serve.server CONFIG.json` with the
interpreter's libpython first on LD_LIBRARY_PATH, waits for its "ready" line, and passes SIGTERM/Ctrl-C on
as SIGTERM (in-flight requests are answered; `exit_timeout_s` bounds the wait).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import IO

import edgeae
from edgeae.config import save_config
from edgeae.errors import EdgeAEError
from edgeae.runtime.run_files import ROLES, onnx_path
from edgeae.serve import host
from edgeae.serve.config import ServeConfig

READY_MARK = '{"event": "ready"'  # the line edgeae/serve/server.py prints once every model is loaded
READY_TIMEOUT_S = 180.0  # first start of a model: Triton copies its binaries, loads every instance


def serve_python(requested: str = "") -> host.HostReport:
    """The interpreter the server runs under: `requested` (--serve-python / SERVE_PYTHON), else .venv-serve's,
    else this one; refused, with the reason and the fix, unless it can host Triton and has PyTriton."""
    candidates = [requested] if requested else [str(host.project_serve_python()), sys.executable]
    reports = []
    for python in candidates:
        if not requested and not Path(python).is_file():
            continue
        report = host.probe(python)
        if report.ready:
            return report
        reports.append(report)
    why = " | ".join(r.describe() for r in reports) or f"{host.project_serve_python()} not found"
    raise EdgeAEError(f"no Python here can run the Triton server: {why}; run 'make serve-env' "
                      "(or pass --serve-python / SERVE_PYTHON: a shared-build Python with nvidia-pytriton)")


def free_ports(count: int = 3) -> list[int]:
    """Ports nothing listens on now, on loopback (for tests and the load test: never the defaults)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def check_runs(cfg: ServeConfig) -> None:
    """Refuse runs without ONNX files here, before a server process is started for them."""
    cfg.validate()
    for run in cfg.runs:
        missing = [onnx_path(run, role).name for role in ROLES if not onnx_path(run, role).is_file()]
        if missing:
            raise EdgeAEError(f"{run} has no {' or '.join(missing)}; run 'edgeae export {run}' first")


class ServerProcess:
    """A started server process (its own process group): `wait_ready`, `stop` (graceful), `kill` (a crash)."""

    def __init__(self, cfg: ServeConfig, popen: subprocess.Popen, echo: IO | None, config_dir):
        self.cfg, self.popen, self.echo = cfg, popen, echo
        self.ready_info: dict | None = None
        self.tail: list[str] = []
        self._config_dir = config_dir
        self._ready = threading.Event()
        self._pump = threading.Thread(target=self._read_output, name="serve:output", daemon=True)
        self._pump.start()

    @property
    def url(self) -> str:
        return self.cfg.url()

    def _read_output(self) -> None:
        """Pass the server's output on (to `echo`), keep its tail for errors, notice the ready line."""
        for line in self.popen.stdout:
            self.tail = (self.tail + [line.rstrip()])[-40:]
            # PyTriton's thread prints Triton's log to the same stdout: the ready line may follow a partial one
            if READY_MARK in line and self.ready_info is None:
                self.ready_info, _ = json.JSONDecoder().raw_decode(line[line.index(READY_MARK):])
                self._ready.set()
            if self.echo is not None:
                self.echo.write(line)
                self.echo.flush()
        self._ready.set()  # ended: wait_ready looks at the exit code

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict:
        """Block until every model is loaded; raise EdgeAEError with the server's last lines if it does not come up."""
        self._ready.wait(timeout)
        if self.ready_info is None:
            code = self.popen.poll()
            if code is None:
                self.kill()
            state = f"exited with code {code}" if code is not None else f"was not ready after {timeout:.0f} s"
            raise EdgeAEError(f"the Triton server {state}; its last lines:\n  " + "\n  ".join(self.tail[-12:]))
        return self.ready_info

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM, then wait for the in-flight requests (exit_timeout_s) and the shutdown; SIGKILL after that."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(self.cfg.exit_timeout_s + 30 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            return self.kill()
        finally:
            self._cleanup()

    def kill(self) -> int:
        """SIGKILL to the server's whole process group (tritonserver and its model stubs too): a crash; then
        remove what the group held in /dev/shm and PyTriton's workspaces, which a killed Triton leaves behind."""
        leftovers = group_files(self.popen.pid)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.popen.wait()
        self._cleanup()
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return code

    def _cleanup(self) -> None:
        self._pump.join(timeout=5)
        if self._config_dir is not None:
            self._config_dir.cleanup()
            self._config_dir = None


def group_files(pgid: int) -> list[Path]:
    """Shared memory (/dev/shm) and PyTriton workspaces that the processes of group `pgid` hold (Linux /proc)."""
    found: set[Path] = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            maps = [line.split()[-1] for line in (proc / "maps").read_text().splitlines() if "/dev/shm/" in line]
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
        found |= {Path(p) for p in links + maps if p.startswith("/dev/shm/")}
        for arg in (a.decode(errors="replace") for a in args):
            parts = Path(arg).parts
            if "pytriton" in parts and any(p.startswith("workspace_") for p in parts):  # ~/.cache/pytriton/workspace_*
                found.add(Path(*parts[:[p.startswith("workspace_") for p in parts].index(True) + 1]))
            elif len(parts) > 2 and parts[1] == "tmp" and parts[2].startswith("folder"):  # a model's store
                found.add(Path("/tmp", parts[2]))
    return sorted(found)


def start(cfg: ServeConfig, report: host.HostReport, echo: IO | None = None) -> ServerProcess:
    """Start the server process for `cfg` under the interpreter `report` describes; returns at once."""
    check_runs(cfg)
    config_dir = tempfile.TemporaryDirectory(prefix="edgeae-serve-")
    path = Path(config_dir.name) / "serve.json"
    # absolute run paths: the server's working directory need not be ours
    save_config(replace(cfg, runs=tuple(str(Path(r).resolve()) for r in cfg.runs), names=tuple(cfg.served_names())),
                path)
    env = host.stub_environment(report)
    # the server imports this very edgeae, whatever the serve environment has installed
    root = str(Path(edgeae.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH", "")])])
    env["PYTHONUNBUFFERED"] = "1"
    popen = subprocess.Popen([report.python, "-m", "edgeae.serve.server", str(path)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    return ServerProcess(cfg, popen, echo, config_dir)


def serve(cfg: ServeConfig, python: str = "", echo: IO | None = None) -> int:
    """`edgeae serve`: run the server until SIGTERM/Ctrl-C (exit 0 after a graceful stop) or until it dies."""
    check_runs(cfg)
    report = serve_python(python)
    server = start(cfg, report, echo=echo if echo is not None else sys.stderr)
    try:
        info = server.wait_ready()
        names = ", ".join(f"{m['model']} v{m['version']}" for m in info["models"])
        print(f"edgeae serve: ready at {server.url} (gRPC {info['grpc']}, metrics http://{info['metrics']}/metrics) "
              f"under {report.python}: {names}", flush=True)
        code = server.popen.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through the CLI's handler
        print("edgeae serve: stopping: answering the requests in flight", file=sys.stderr, flush=True)
        code = server.stop()
        return 0 if code in (0, -signal.SIGTERM) else code
    finally:
        if server.alive():
            server.kill()
    raise EdgeAEError(f"the Triton server exited with code {code}; its last lines:\n  " + "\n  ".join(server.tail[-12:]))
