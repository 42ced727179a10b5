"""`edgeae deploy --target server`: a bundle whose installer sets up Triton and whose unit runs `edgeae serve`."""

import subprocess
import tarfile

import pytest

from edgeae.export.bundle import DeployConfig, deploy


@pytest.fixture(scope="module")
def server_bundle(trained_run, tmp_path_factory):
    archive = deploy(trained_run, DeployConfig(target="server", name="tiny-server"), tmp_path_factory.mktemp("dist"))
    with tarfile.open(archive) as tar:
        return {name: tar.extractfile(f"tiny-server/{name}").read().decode()
                for name in ("install.sh", "edgeae.service.in")}


def test_the_unit_serves_the_model_and_drains_requests_on_stop(server_bundle):
    unit = server_bundle["edgeae.service.in"]
    assert "edgeae serve @PREFIX@/model --serve-python @PREFIX@/venv/bin/python $EDGEAE_SERVE_ARGS" in unit
    assert "KillMode=mixed" in unit and "KillSignal=SIGTERM" in unit and "Restart=always" in unit


def test_the_installer_installs_pytriton_and_checks_the_python_can_host_it(server_bundle):
    script = server_bundle["install.sh"]
    assert "nvidia-pytriton==0.7.0|" in script and "-m edgeae.serve.host" in script
    assert "SERVE_ARGS='--address 0.0.0.0'" in script
    assert not any(f"@{key}@" in script for key in ("NAME_Q", "SERVE_ARGS_Q", "REQUIREMENTS"))
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
