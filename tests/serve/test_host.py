"""Which interpreters can host Triton's Python backend, and the reason given when one cannot."""

import platform
import sys

from edgeae.serve import host


def facts(tmp_path, version="3.11.7", shared=True, lib=True, **extra) -> dict:
    libdir = tmp_path / "lib"
    libdir.mkdir(exist_ok=True)
    soname = f"libpython{host.minor(version)}.so.1.0"
    if lib:
        (libdir / soname).write_bytes(b"\x7fELF")
    return {"executable": f"/opt/python{version}/bin/python", "version": version, "shared": shared,
            "libdir": str(libdir), "soname": soname if shared else "", "pytriton": True,
            "modules": {"numpy": True, "onnxruntime": True, "cv2": True, "zmq": True}, **extra}


def test_a_shared_build_whose_libpython_the_loader_finds_is_ready(tmp_path):
    f = facts(tmp_path, "3.11.2")
    report = host.assess(f, loader_finds=str(tmp_path / "lib" / "libpython3.11.so.1.0"))
    assert report.capable and report.ready and not report.notes
    assert "can host" in report.describe()


def test_another_libpython_on_the_loader_path_is_explained_and_fixed_by_ld_library_path(tmp_path):
    """pyenv 3.11.7 beside Debian's libpython3.11 (3.11.2): the '_recursion_count' failure, fixed by LIBDIR first."""
    report = host.assess(facts(tmp_path), loader_finds="/lib/x86_64-linux-gnu/libpython3.11.so.1.0")
    assert report.capable
    assert "_recursion_count" in report.notes[0] and "LD_LIBRARY_PATH" in report.notes[0]
    env = host.stub_environment(report, {"LD_LIBRARY_PATH": "/other"})
    assert env["LD_LIBRARY_PATH"].split(":") == [str(tmp_path / "lib"), "/other"]


def test_a_libpython_the_loader_cannot_find_is_explained(tmp_path):
    report = host.assess(facts(tmp_path, "3.12.1"), loader_finds="")
    assert report.capable and "cannot open shared object file" in report.notes[0]


def test_a_static_build_cannot_host_and_names_a_fix(tmp_path):
    report = host.assess(facts(tmp_path, shared=False, lib=False), loader_finds="")
    assert not report.capable
    assert "not a shared build" in report.describe() and "/usr/bin/python3.11" in report.describe()


def test_a_python_without_a_backend_stub_cannot_host(tmp_path):
    report = host.assess(facts(tmp_path, "3.14.0"), loader_finds="")
    assert not report.capable and "backend stubs for Python 3.8" in report.describe()


def test_a_capable_python_without_pytriton_is_told_to_run_make_serve_env(tmp_path):
    report = host.assess(facts(tmp_path, pytriton=False), loader_finds="")
    assert report.capable and not report.ready and "make serve-env" in report.describe()


def test_a_missing_interpreter_is_a_reason_not_an_exception(tmp_path):
    report = host.probe(str(tmp_path / "python3.99"))
    assert not report.capable and "not found" in report.describe()


def test_doctor_says_whether_this_python_can_host_triton_and_why():
    from edgeae import doctor

    lines = [line for line in doctor.report(probe_cameras=False).splitlines() if line.startswith("triton")]
    this = next(line for line in lines if "this python" in line)
    assert sys.executable in this and ("can host" in this or "cannot host" in this)
    assert any(line.startswith("triton client") for line in lines)


def test_probe_reads_this_interpreter():
    report = host.probe(sys.executable)
    assert report.version == platform.python_version() and report.modules["numpy"]


def test_serving_and_its_client_import_where_torch_raises(run_without_torch, trained_run):
    result = run_without_torch(f"""
        import edgeae.serve.server, edgeae.serve.launch, edgeae.serve.client, edgeae.serve.bench
        import edgeae.runtime.backends.triton
        from edgeae.serve.models import RunModels
        RunModels({str(trained_run)!r})
        assert not {{"torch", "edgeae.training", "edgeae.export"}} & set(sys.modules)
    """)
    assert result.returncode == 0, result.stderr
