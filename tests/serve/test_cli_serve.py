"""`edgeae serve` refuses what cannot be served, in one line, before any server process is started."""

from edgeae.cli import main


def test_a_run_without_onnx_files_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["serve", str(tmp_path / "run")]) == 2
    assert "has no encoder.onnx or decoder.onnx; run 'edgeae export" in capsys.readouterr().err


def test_a_python_that_cannot_host_triton_is_refused_with_the_fix(trained_run, tmp_path, capsys):
    assert main(["serve", str(trained_run), "--serve-python", str(tmp_path / "python3.99")]) == 2
    err = capsys.readouterr().err
    assert "no Python here can run the Triton server" in err and "make serve-env" in err


def test_the_ready_line_is_found_after_a_partial_log_line():
    import io

    from edgeae.serve.config import ServeConfig
    from edgeae.serve.launch import ServerProcess

    class Popen:
        stdout = io.StringIO('I1128 partial log{"event": "ready", "models": []}\nlater\n')
        pid = 0

        def poll(self):
            return 0

    server = ServerProcess(ServeConfig(runs=("x",)), Popen(), None, None)
    assert server.wait_ready(timeout=5) == {"event": "ready", "models": []}
