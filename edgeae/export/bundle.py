"""`edgeae deploy`: one tar.gz that installs a trained model and the torch-free runtime on a device.

Bundle layout (one top-level folder, NAME/):
  MANIFEST.json        sha256 and size of every other file; install.sh refuses a bundle that does not match
  install.sh           verify → venv → runtime wheel → missing dependencies → model → engines → systemd unit
  verify.py            stdlib-only verifier and safe extractor (edgeae/export/bundle_verify.py)
  edgeae.service.in    systemd unit template: `edgeae run` on a camera, always restarted
  model/               the ONNX models (fp32, and fp16/int8 when built), model.json, anomaly.json, configs
  wheels/              edgeae's wheel (its requirements have no torch), plus any --wheels given

--target server bundles Triton Inference Server instead (edgeae/serve/): install_server.sh installs nvidia-pytriton
into a venv of a Python that can host its backend stub, and edgeae-serve.service.in runs `edgeae serve`.

No torch is imported here: deploying needs only what the runtime needs, plus pip to build the wheel.
On the device, install.sh builds the engines with `python -m edgeae.runtime.engine_build MODEL_DIR`.

Every value written into install.sh, edgeae.env or the systemd unit is one line (control characters are
refused here) and shell-quoted (`shlex.quote`).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import edgeae
from edgeae.config import atomic_write_bytes, to_dict
from edgeae.errors import EdgeAEError
from edgeae.export import bundle_verify
from edgeae.runtime.engine_build import read_models
from edgeae.runtime.entropy_codec import ENTROPY_TABLES
from edgeae.runtime.run_files import PRECISIONS, ROLES, form_names, onnx_path

TARGETS = ("jetson", "gpu", "cpu", "server")
# target server: Triton Inference Server for many cameras' clients (edgeae serve), its own install script and unit.
SERVER_TEMPLATES = {"install.sh": "install_server.sh", "edgeae.service.in": "edgeae-serve.service.in"}
OPENVINO_REQUIREMENT = "openvino>=2026.4"  # pyproject.toml's [openvino] extra
SERVER_ARGS = "--address 0.0.0.0"  # a central server serves the site's network; install.sh --serve-args overrides
SIDE_FILES = ("anomaly.json", "anomaly_reference.npy", "config.json", "export_config.json", "export_report.json",
              ENTROPY_TABLES)
# Distribution → module imported to decide whether the device already has it (JetPack's OpenCV and
# onnxruntime-gpu are not pip distributions of these names, so pip alone would shadow them).
IMPORT_NAMES = {"opencv-python-headless": "cv2", "opencv-python": "cv2"}
TEMPLATES = Path(__file__).with_name("bundle_templates")


@dataclass(frozen=True)
class DeployConfig:
    target: str = "cpu"
    name: str = ""  # bundle name; "" = edgeae-<run folder>-<target>
    source: str = "0"  # what the systemd unit runs on: camera index, video, URL or GStreamer pipeline
    task: str = "anomaly"
    wheels: str = ""  # folder of extra wheels to ship, for devices without internet

    def validate(self) -> None:
        from edgeae.runtime.tasks.base import TASKS

        for f in fields(self):
            check_one_line(f"--{f.name}", getattr(self, f.name))
        if self.target not in TARGETS:
            raise EdgeAEError(f"target {self.target!r} is not one of {', '.join(TARGETS)}")
        if self.task not in TASKS:
            raise EdgeAEError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.wheels and not Path(self.wheels).is_dir():
            raise EdgeAEError(f"wheel folder {self.wheels} not found; pass a folder of .whl files or leave --wheels out")


def check_one_line(flag: str, value: str) -> None:
    """Refuse control characters (newline, carriage return, tab, …) in a value written into a script,
    env file or unit: a newline there starts a new command or setting."""
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise EdgeAEError(f"{flag} {value!r} has a control character (newline, tab, …); "
                          "it is written into install.sh and the systemd unit: pass it on one line")


def model_files(run_dir: Path) -> dict[str, list[Path]]:
    """{"precisions": …, "files": …}: what of the run folder goes into the bundle."""
    if not (onnx_path(run_dir, "encoder", "fp32").is_file() and onnx_path(run_dir, "decoder", "fp32").is_file()):
        raise EdgeAEError(f"{run_dir} has no encoder.onnx/decoder.onnx; run 'edgeae export {run_dir}' first")
    precisions = [p for p in PRECISIONS
                  if onnx_path(run_dir, "encoder", p).is_file() and onnx_path(run_dir, "decoder", p).is_file()]
    files = [onnx_path(run_dir, r, p) for p in precisions for r in ROLES]
    # the equivalent forms the on-device tuner chooses from; tuning.json is not shipped: it is per device
    files += [run_dir / f for f in (*form_names(), *SIDE_FILES) if (run_dir / f).is_file()]
    return {"precisions": precisions, "files": files}


def model_description(run_dir: Path, precisions: list[str]) -> dict:
    """model.json: normalisation, architecture, threshold and per-precision (quantisation) metadata.

    Refuses a run whose encoder and decoder files are swapped (read_models checks their "edgeae.role").
    """
    per_precision = {p: read_models(run_dir, p)["encoder"].metadata for p in precisions}
    fp32 = per_precision["fp32"]
    for p, meta in per_precision.items():
        if meta.get("edgeae.checkpoint_sha256") != fp32.get("edgeae.checkpoint_sha256"):
            raise EdgeAEError(f"{onnx_path(run_dir, 'encoder', p).name} comes from another checkpoint than encoder.onnx; "
                              f"rebuild it with 'edgeae build {run_dir} --precision {p}'")
    anomaly = run_dir / "anomaly.json"
    return {
        "edgeae_version": fp32.get("edgeae.version", edgeae.__version__),
        "run": run_dir.name,
        "task": fp32.get("edgeae.task"),
        "normalisation": fp32.get("edgeae.normalisation"),
        "architecture": json.loads(fp32.get("edgeae.architecture", "null")),
        "checkpoint_sha256": fp32.get("edgeae.checkpoint_sha256"),
        "anomaly": json.loads(anomaly.read_text()) if anomaly.is_file() else None,
        "precisions": {p: {"encoder": onnx_path(run_dir, "encoder", p).name,
                           "decoder": onnx_path(run_dir, "decoder", p).name, "metadata": meta}
                       for p, meta in per_precision.items()},
    }


def project_root() -> Path:
    root = Path(edgeae.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise EdgeAEError(f"edgeae's source tree (pyproject.toml) is not at {root}; deploy from a git checkout of edgeae")
    return root


def build_wheel(dest: Path) -> Path:
    """`pip wheel --no-deps` of edgeae, built from a clean copy so the source tree gets no build/ folder."""
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="edgeae-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(root / "edgeae", src / "edgeae", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(dest)]
        if _has_setuptools():  # offline and faster; otherwise pip fetches setuptools into an isolated env
            cmd.append("--no-build-isolation")
        result = subprocess.run(cmd + [str(src)], capture_output=True, text=True)
        if result.returncode:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeAEError(f"building edgeae's wheel failed ({tail}); check that pip works: '{sys.executable} -m pip --version'")
    wheels = sorted(dest.glob("edgeae-*.whl"))
    if len(wheels) != 1:
        raise EdgeAEError(f"expected one edgeae wheel in {dest}, found {len(wheels)}")
    return wheels[0]


def _has_setuptools() -> bool:
    import importlib.util

    return importlib.util.find_spec("setuptools") is not None


def wheel_requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional Requires-Dist lines (extras such as [train] are left out)."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = z.read(name).decode()
    reqs = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    return [r for r in reqs if "extra ==" not in r]


def requirement_lines(requirements: list[str]) -> str:
    """`spec|module` per line for install.sh, which installs a spec only when its module does not import."""
    lines = []
    for spec in requirements:
        spec = spec.split(";")[0].strip()
        dist = re.match(r"[A-Za-z0-9._-]+", spec).group(0)
        if dist.lower() == "torch":
            raise EdgeAEError("edgeae's base requirements include torch; the runtime wheel must not (check pyproject.toml)")
        lines.append(f"{spec}|{IMPORT_NAMES.get(dist.lower(), dist.replace('-', '_'))}")
    return "\n".join(lines)


# install.sh's optional-runtime step, the same in both templates (@OPTIONAL_RUNTIMES@): each spec is tried, and a
# failure only says so.
OPTIONAL_RUNTIMES = """\
# Optional runtimes: candidates of the tuner below (OpenVINO is the fastest on many x86 CPUs). A platform without
# their wheels keeps ONNX Runtime, and the tuner says which runtimes it timed.
while IFS= read -r spec; do
  [ -n "$spec" ] || continue
  "${PIP[@]}" "$spec" || echo "install.sh: optional $spec not installed here; the tuner times the other runtimes" >&2
done <<'OPTIONAL_REQUIREMENTS'
@OPTIONAL_REQUIREMENTS@
OPTIONAL_REQUIREMENTS"""


def optional_requirements(cfg: DeployConfig) -> list[str]:
    """Runtimes install.sh tries and may go without: OpenVINO where the device runs on its CPU (cpu, server), as a
    candidate of the tuner that install.sh runs (issue 11: it is 1.4-1.5× ONNX Runtime on the AMD EPYC). jetson and
    gpu run TensorRT."""
    return [OPENVINO_REQUIREMENT] if cfg.target in ("cpu", "server") else []


def render_install_script(name: str, cfg: DeployConfig, requirements: list[str]) -> str:
    """install.sh with every deploy value one line and shell-quoted (REQUIREMENTS is a quoted here-document)."""
    text = (TEMPLATES / template(cfg, "install.sh")).read_text().replace("@OPTIONAL_RUNTIMES@", OPTIONAL_RUNTIMES)
    values = {"NAME_Q": shlex.quote(name), "SOURCE_Q": shlex.quote(cfg.source), "TARGET_Q": shlex.quote(cfg.target),
              "TASK_Q": shlex.quote(cfg.task), "VENV_FLAGS": "" if cfg.target == "cpu" else "--system-site-packages",
              "REQUIREMENTS": requirement_lines(requirements), "SERVE_ARGS_Q": shlex.quote(SERVER_ARGS),
              "OPTIONAL_REQUIREMENTS": "\n".join(optional_requirements(cfg))}
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def template(cfg: DeployConfig, name: str) -> str:
    """The template file behind the bundle's `name` for this target (the server has its own)."""
    return SERVER_TEMPLATES[name] if cfg.target == "server" else name


def stage_bundle(run_dir: Path, cfg: DeployConfig, name: str, stage: Path) -> None:
    """Write the bundle's files into `stage` (the folder that becomes NAME/ in the archive)."""
    found = model_files(run_dir)
    (stage / "model").mkdir(parents=True)
    for f in found["files"]:
        shutil.copy2(f, stage / "model" / f.name)
    description = model_description(run_dir, found["precisions"])
    (stage / "model" / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    wheels = stage / "wheels"
    wheel = build_wheel(wheels)
    if cfg.wheels:
        for extra in sorted(Path(cfg.wheels).glob("*.whl")):
            shutil.copy2(extra, wheels / extra.name)
    install = stage / "install.sh"
    requirements = wheel_requirements(wheel)
    if cfg.target == "server":
        from edgeae.serve.host import PYTRITON_REQUIREMENT

        requirements.append(PYTRITON_REQUIREMENT)
    install.write_text(render_install_script(name, cfg, requirements))
    install.chmod(0o755)
    shutil.copy2(Path(bundle_verify.__file__), stage / "verify.py")
    unit = (TEMPLATES / template(cfg, "edgeae.service.in")).read_text().replace("@NAME@", name)
    (stage / "edgeae.service.in").write_text(unit)  # @PREFIX@ and @USER@ are filled in by install.sh
    bundle_verify.write_manifest(stage, {"name": name, "target": cfg.target, "edgeae_version": edgeae.__version__,
                                         "precisions": found["precisions"], "deploy_config": to_dict(cfg)})


def write_archive(stage: Path, name: str, archive: Path) -> None:
    """tar.gz of `stage` as NAME/…, owner root, sorted: the same files give the same member list."""
    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(stage, arcname=name, recursive=False, filter=reset)
        for rel in bundle_verify.list_files(stage) + [bundle_verify.MANIFEST]:
            tar.add(stage / rel, arcname=f"{name}/{rel}", filter=reset)
    atomic_write_bytes(archive, buf.getvalue())


def deploy(run_dir: str | os.PathLike, cfg: DeployConfig, out_dir: str | os.PathLike) -> Path:
    """Build OUT/NAME.tar.gz (+ NAME.tar.gz.sha256) from a run folder; returns the archive path."""
    from tqdm import tqdm

    cfg.validate()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise EdgeAEError(f"run folder {run_dir} not found; pass a run folder after 'edgeae export'")
    name = cfg.name or f"edgeae-{run_dir.resolve().name}-{cfg.target}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise EdgeAEError(f"bundle name {name!r} may use only letters, digits, '.', '_' and '-'; pass --name")
    archive = out_dir / f"{name}.tar.gz"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".stage-") as tmp, \
            tqdm(total=2, desc=f"bundle {name}", disable=None, leave=False) as bar:
        stage_bundle(run_dir, cfg, name, Path(tmp) / name)
        bar.update()
        write_archive(Path(tmp) / name, name, archive)
        bar.update()
    digest = bundle_verify.sha256_file(archive)
    atomic_write_bytes(Path(f"{archive}.sha256"), f"{digest}  {archive.name}\n".encode())
    return archive


def ssh_commands(archive: Path, host: str, remote_dir: str = "edgeae-bundles",
                 install_args: tuple[str, ...] = ()) -> list[tuple[list[str], bytes | None]]:
    """(argv, stdin) steps that copy a bundle to `host` and install it there.

    The device checks the archive's sha256 and unpacks it with the bundle's own verifier (sent on
    stdin, so nothing from the archive runs before it is checked), then runs install.sh.
    """
    if not host or host.startswith("-"):
        raise EdgeAEError(f"--host {host!r} is not user@device")
    name = archive.name[: -len(".tar.gz")]
    remote = shlex.quote(remote_dir)
    install = " ".join(shlex.quote(a) for a in (f"./{name}/install.sh", *install_args))
    remote_script = (f"cd {remote} && sha256sum -c {shlex.quote(archive.name + '.sha256')} && "
                     f"python3 - extract {shlex.quote(archive.name)} . && {install}")
    verifier = Path(bundle_verify.__file__).read_bytes()
    return [(["ssh", host, f"mkdir -p {remote}"], None),
            (["scp", "-q", str(archive), f"{archive}.sha256", f"{host}:{remote_dir}/"], None),
            (["ssh", host, remote_script], verifier)]


def install_over_ssh(archive: Path, host: str, install_args: tuple[str, ...] = ()) -> None:
    for argv, stdin in ssh_commands(archive, host, install_args=install_args):
        if subprocess.run(argv, input=stdin).returncode:
            raise EdgeAEError(f"'{' '.join(argv[:2])} …' failed; check that 'ssh {host}' works without a password prompt")
