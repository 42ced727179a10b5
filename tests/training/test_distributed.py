"""DDP through torchrun: two CPU processes compute what one process computes on the same global batches."""

import json
import shutil

import pytest
import torch

from edgeae.cli import main
from edgeae.errors import EdgeAEError
from edgeae.training.distributed import LaunchConfig, launch, torchrun_command
from edgeae.training.train import TrainConfig, load_model, train

# 256 crops, global batch 64 → 4 steps an epoch; each of the 2 ranks takes 32 crops a step.
TINY = dict(data="synthetic", samples_per_epoch=256, val_samples=128, max_images=12, batch_size=64, device="cpu")
TINY_FLAGS = ["--data", "synthetic", "--samples-per-epoch", "256", "--max-images", "12", "--batch-size", "64",
              "--device", "cpu"]


def train_two_processes(cfg: TrainConfig, run, resume: bool = False) -> None:
    launch(cfg, run, LaunchConfig(nproc=2), resume=resume)


def assert_same_weights(a_dir, b_dir) -> None:
    a, _, _ = load_model(a_dir, "last")
    b, _, _ = load_model(b_dir, "last")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_two_torchrun_processes_match_one_process_on_the_same_batches(tmp_path):
    train_two_processes(TrainConfig(epochs=1, **TINY), tmp_path / "ddp")
    train(TrainConfig(epochs=1, **TINY), tmp_path / "single", progress=False)
    assert_same_weights(tmp_path / "ddp", tmp_path / "single")
    assert {p.name for p in (tmp_path / "ddp").iterdir()} >= {"config.json", "best.pt", "last.pt", "metrics.json", "loss.png"}


def test_distributed_resume_continues_to_the_weights_of_a_single_process_resume(tmp_path):
    train(TrainConfig(epochs=1, **TINY), tmp_path / "single", progress=False)
    shutil.copytree(tmp_path / "single", tmp_path / "ddp")
    train(TrainConfig(epochs=2, **TINY), tmp_path / "single", resume=True, progress=False)
    train_two_processes(TrainConfig(epochs=2, **TINY), tmp_path / "ddp", resume=True)
    assert_same_weights(tmp_path / "ddp", tmp_path / "single")
    assert [m["epoch"] for m in json.loads((tmp_path / "ddp" / "metrics.json").read_text())["epochs"]] == [1, 2]


def test_global_batch_must_split_evenly_over_processes():
    with pytest.raises(EdgeAEError, match="not a multiple of the 3 processes"):
        LaunchConfig(nproc=3).validate(batch_size=64)


def test_existing_run_is_refused_before_workers_start(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").touch()
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(tmp_path / "run"), "--nproc", "2"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_several_machines_rendezvous_at_the_master_address(tmp_path):
    launch = LaunchConfig(nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.5", master_port=29600)
    cmd = torchrun_command(launch, TrainConfig(**TINY), tmp_path / "run", resume=True)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert {"--nproc-per-node=4", "--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.5", "--master-port=29600",
            "--resume"} <= set(cmd)
    assert "--standalone" not in cmd


def test_one_machine_uses_a_standalone_rendezvous(tmp_path):
    cmd = torchrun_command(LaunchConfig(nproc=2), TrainConfig(**TINY), tmp_path / "run", resume=False)
    assert "--standalone" in cmd and not any(a.startswith("--master-addr") for a in cmd)
