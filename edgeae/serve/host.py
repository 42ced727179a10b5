"""Can a Python interpreter host Triton's Python backend (what PyTriton binds models through)? And why not.

PyTriton's `tritonserver` runs each model instance in `triton_python_backend_stub`, a C++ program built per
Python minor version that links `libpython3.X.so.1.0` dynamically and then imports the interpreter's own
standard library (`sys.prefix`). Measured here (nvidia-pytriton 0.7.0, Debian 12, pyenv):
  - Debian's /usr/bin/python3.11 (3.11.2): the stub finds /lib/x86_64-linux-gnu/libpython3.11.so.1.0, the
    same build as the interpreter: works.
  - pyenv 3.11.7: the dynamic loader also finds Debian's libpython3.11.so.1.0 (3.11.2), which then imports
    3.11.7's stdlib: model load fails with "'_thread.RLock' object has no attribute '_recursion_count'".
  - pyenv 3.12.1: no libpython3.12.so.1.0 on the loader's path: "error while loading shared libraries".
Both pyenv builds are shared builds (`--enable-shared`) whose libpython sits in sysconfig's LIBDIR; with
that folder first on LD_LIBRARY_PATH the stub loads the interpreter's own libpython, and pyenv 3.11.7 and
3.12.1 both serve (measured). So `stub_environment` puts it there, and `probe` says what the loader would have found without it.
A static build (no libpython .so at all) cannot host the stub.

Stdlib only: `python -m edgeae.serve.host [PYTHON]` runs under any interpreter (the Makefile's serve-env uses it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PYTRITON_REQUIREMENT = "nvidia-pytriton==0.7.0"
# The Python minor versions nvidia-pytriton 0.7.0 ships a backend stub for (pytriton/tritonserver/python_backend_stubs/).
STUB_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
# Interpreters tried, in order, when none is named: the system's first (Debian/Ubuntu build their python3.X
# shared, with the libpython the loader finds by default), then whatever PATH offers.
SYSTEM_CANDIDATES = tuple(f"/usr/bin/python3.{minor}" for minor in (11, 12, 10, 13, 9))
PATH_CANDIDATES = ("python3.11", "python3.12", "python3.10", "python3", "python3.13", "python3.9")

_PROBE = r"""
import importlib.util, json, platform, sys, sysconfig
print(json.dumps({
    "executable": sys.executable, "version": platform.python_version(), "prefix": sys.prefix,
    "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")), "libdir": sysconfig.get_config_var("LIBDIR") or "",
    "soname": sysconfig.get_config_var("INSTSONAME") or "",
    "pytriton": importlib.util.find_spec("pytriton") is not None,
    "modules": {m: importlib.util.find_spec(m) is not None for m in ("numpy", "zmq", "onnxruntime", "cv2", "edgeae")},
}))
"""


@dataclass
class HostReport:
    """What `probe` found about one interpreter, and whether it can host the stub (`reasons` empty)."""

    python: str
    version: str = ""
    shared: bool = False
    libpython: str = ""          # the interpreter's own libpython3.X.so.1.0 ("" when it has none)
    loader_finds: str = ""       # what the dynamic loader resolves the stub's libpython to without our help
    pytriton: bool = False
    modules: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why it cannot host; empty: it can
    notes: list[str] = field(default_factory=list)    # what edgeae does about it

    @property
    def capable(self) -> bool:
        """The interpreter can host the stub (PyTriton may still need installing: see `ready`)."""
        return not self.reasons

    @property
    def ready(self) -> bool:
        """Capable, and PyTriton, ONNX Runtime, OpenCV and edgeae import in it: `edgeae serve` can start."""
        return self.capable and self.pytriton and all(self.modules.get(m) for m in ("numpy", "onnxruntime", "cv2"))

    def missing(self) -> list[str]:
        wanted = {"pytriton": self.pytriton, **{m: self.modules.get(m, False) for m in ("numpy", "onnxruntime", "cv2")}}
        return [m for m, ok in wanted.items() if not ok]

    def describe(self) -> str:
        """One line for `edgeae doctor` and error messages."""
        head = f"{self.python} (Python {self.version or '?'})"
        if not self.capable:
            return f"{head} cannot host Triton's Python backend: {'; '.join(self.reasons)}"
        state = "ready" if self.ready else f"capable, but lacks {', '.join(self.missing())} (make serve-env)"
        return f"{head} can host Triton's Python backend, {state}" + (f"; {'; '.join(self.notes)}" if self.notes else "")


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def loader_path(soname: str) -> str:
    """Where the dynamic loader finds `soname` by default (ldconfig's cache), or "" when it does not."""
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else None)
    if not ldconfig or not soname:
        return ""
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.splitlines():
        name, _, target = line.strip().partition(" => ")
        if name.split(" ")[0] == soname and target:
            return target.strip()
    return ""


def assess(facts: dict, loader_finds: str | None = None) -> HostReport:
    """The report for an interpreter from its probed facts (see _PROBE); pure, so tests give it any facts."""
    version, libdir, soname = facts.get("version", ""), facts.get("libdir", ""), facts.get("soname", "")
    report = HostReport(python=facts.get("executable", ""), version=version, shared=bool(facts.get("shared")),
                        pytriton=bool(facts.get("pytriton")), modules=dict(facts.get("modules", {})))
    want = f"libpython{minor(version)}.so.1.0"
    report.loader_finds = loader_path(want) if loader_finds is None else loader_finds
    if minor(version) not in STUB_VERSIONS:
        report.reasons.append(f"{PYTRITON_REQUIREMENT} ships backend stubs for Python {', '.join(STUB_VERSIONS)} only")
    own = Path(libdir) / soname if libdir and soname.startswith("libpython") else None
    if not report.shared or own is None or not own.is_file():
        report.reasons.append(f"it is not a shared build (no {want} in its LIBDIR {libdir or '?'}), and the stub "
                              f"links {want} dynamically: use a shared build such as Debian's /usr/bin/python3.11")
        return report
    report.libpython = str(own)
    found = report.loader_finds
    if not found:
        report.notes.append(f"the loader alone would not find {want} ('cannot open shared object file'): "
                            f"edgeae serve puts {libdir} first on LD_LIBRARY_PATH")
    elif os.path.realpath(found) != os.path.realpath(own):
        report.notes.append(f"the loader alone would give the stub {found}, another build than this Python "
                            f"{version}'s stdlib (the '_recursion_count' failure): edgeae serve puts {libdir} "
                            "first on LD_LIBRARY_PATH")
    return report


def run_probe(python: str) -> dict | str:
    """The interpreter's facts (a dict), or why they could not be read (a str)."""
    exe = shutil.which(python) or python
    if not Path(exe).is_file():
        return f"{python} not found"
    try:
        out = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python} does not run ({e})"
    if out.returncode:
        return f"{python} does not run ({(out.stderr.strip().splitlines() or ['no output'])[-1]})"
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{python} printed no probe result"


def probe(python: str) -> HostReport:
    """Whether `python` can host Triton's Python backend, and why not; never raises."""
    facts = run_probe(python)
    if isinstance(facts, str):
        return HostReport(python=python, reasons=[facts])
    return assess(facts)


def stub_environment(report: HostReport, env: dict | None = None) -> dict:
    """The environment for the server process: the interpreter's own libpython first on LD_LIBRARY_PATH."""
    env = dict(os.environ if env is None else env)
    if report.libpython:
        libdir = str(Path(report.libpython).parent)
        rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != libdir]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *rest])
    return env


def project_serve_python(root: Path | None = None) -> Path:
    """Where `make serve-env` puts the serve environment's interpreter: ROOT/.venv-serve/bin/python."""
    root = root or Path(__file__).resolve().parents[2]
    return root / ".venv-serve" / "bin" / "python"


def find_base_python(candidates: tuple[str, ...] = SYSTEM_CANDIDATES + PATH_CANDIDATES) -> HostReport | None:
    """The first interpreter that can host the stub (PyTriton not needed yet): what `make serve-env` builds on."""
    seen = set()
    for candidate in candidates:
        exe = shutil.which(candidate) or candidate
        if not Path(exe).is_file() or os.path.realpath(exe) in seen:
            continue
        seen.add(os.path.realpath(exe))
        report = probe(exe)
        if report.capable:
            return report
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m edgeae.serve.host [PYTHON]`: describe PYTHON (default: the serve env's, else this one);
    `--find-base`: print the interpreter `make serve-env` should build on, or exit 1 saying why none fits."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--find-base"]:
        report = find_base_python()
        if report is None:
            print(f"no interpreter here can host Triton's Python backend (tried {', '.join(SYSTEM_CANDIDATES)} and "
                  f"{', '.join(PATH_CANDIDATES)} on PATH); install a shared build, e.g. apt install python3.11-venv, "
                  "or pass SERVE_BASE_PYTHON=/path/to/python3.X", file=sys.stderr)
            return 1
        print(report.python)
        return 0
    python = argv[0] if argv else str(project_serve_python()) if project_serve_python().is_file() else sys.executable
    report = probe(python)
    print(report.describe())
    return 0 if report.capable else 1


if __name__ == "__main__":
    sys.exit(main())
