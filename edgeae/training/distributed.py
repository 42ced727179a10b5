"""Scale-out training: `edgeae train --nproc N [--nnodes M …]` runs the training loop under torchrun.

The launcher (`launch`) checks the run folder, then starts `python -m torch.distributed.run` with this
module as the worker. Each worker (`main`) joins the process group (NCCL on GPUs, gloo on CPU) and
calls `edgeae.training.train.train` with a `DistContext`, which:
  - wraps the model in DistributedDataParallel (gradients averaged over ranks at every step);
  - gives rank r the crops r, r+W, r+2W, … of each epoch's crop set (DistributedSampler's split),
    `--batch-size / W` at a time, so global batch k holds exactly the crops a single process would
    put in its batch k: with equal shards, the averaged gradient is the single-process gradient;
  - leaves the run folder (config, checkpoints, metrics, loss.png) and progress to rank 0, which also
    reads last.pt on --resume and hands it to the other ranks.
For the denoise task each rank draws its own noise, so results match a single process in
distribution, not bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as torch_dist

import edgeae
from edgeae.config import from_dict, to_dict
from edgeae.errors import EdgeAEError


@dataclass(frozen=True)
class LaunchConfig:
    nproc: int = 1  # processes per node (GPUs per node on CUDA)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    def validate(self, batch_size: int) -> None:
        if self.nproc < 1 or self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise EdgeAEError(f"--nproc {self.nproc}, --nnodes {self.nnodes}, --node-rank {self.node_rank}: "
                              "need nproc ≥ 1, nnodes ≥ 1 and 0 ≤ node-rank < nnodes")
        world = self.nproc * self.nnodes
        if batch_size % world:
            raise EdgeAEError(f"--batch-size {batch_size} is not a multiple of the {world} processes; "
                              f"use a multiple of {world} (it is the global batch, split over processes)")


def torchrun_command(launch: LaunchConfig, train_cfg, run_dir: Path, resume: bool) -> list[str]:
    """The `python -m torch.distributed.run …` command line that starts this node's workers."""
    if launch.nnodes == 1:
        where = ["--standalone"]  # picks a free port: several runs on one machine do not collide
    else:
        where = [f"--nnodes={launch.nnodes}", f"--node-rank={launch.node_rank}",
                 f"--master-addr={launch.master_addr}", f"--master-port={launch.master_port}"]
    worker = ["-m", "edgeae.training.distributed", "--config-json", json.dumps(to_dict(train_cfg)), "--out", str(run_dir)]
    return ([sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={launch.nproc}", *where]
            + worker + (["--resume"] if resume else []))


def launch(train_cfg, run_dir: str | os.PathLike, launch_cfg: LaunchConfig, resume: bool = False) -> None:
    """Run training on this node's `nproc` workers through torchrun; returns when they finish."""
    from edgeae.training.train import check_run_dir

    run_dir = Path(run_dir)
    launch_cfg.validate(train_cfg.batch_size)
    if launch_cfg.node_rank == 0:
        check_run_dir(train_cfg, run_dir, resume)  # before spawning: a user error is one line, not N tracebacks
    env = dict(os.environ)
    # Workers import the same edgeae as this process, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(edgeae.__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // launch_cfg.nproc)))
    code = subprocess.run(torchrun_command(launch_cfg, train_cfg, run_dir, resume), env=env).returncode
    if code:
        raise EdgeAEError(f"distributed training failed (torchrun exit code {code}); the failing worker's message is above")


class DistContext:
    """This worker's place in the process group, and the few collective steps the training loop needs."""

    def __init__(self, rank: int, world_size: int, local_rank: int, device: torch.device):
        self.rank, self.world_size, self.local_rank, self.device = rank, world_size, local_rank, device
        self.is_main = rank == 0

    @classmethod
    def from_env(cls, device_name: str) -> "DistContext":
        """Join the group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK): NCCL for CUDA, gloo for CPU."""
        local_rank = int(os.environ["LOCAL_RANK"])
        use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise EdgeAEError("device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
        device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        return cls(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank, device)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.local_rank] if self.device.type == "cuda" else None)

    def shard(self, crops: np.ndarray, cfg, epoch: int):
        """This rank's crops (DistributedSampler's strided split, remainder dropped), per-rank batch config and RNG."""
        usable = len(crops) - len(crops) % self.world_size
        local_cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // self.world_size)
        return crops[self.rank:usable:self.world_size], local_cfg, np.random.default_rng([cfg.seed, epoch, self.rank])

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return t.tolist()

    def from_rank0(self, fn, *args):
        """fn(*args) on rank 0, its result sent to every rank; an EdgeAEError there is raised everywhere."""
        box = [None]
        if self.is_main:
            try:
                box = [("ok", fn(*args))]
            except EdgeAEError as e:
                box = [("error", str(e))]
        torch_dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise EdgeAEError(value)
        return value

    def close(self) -> None:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """torchrun's worker entry point."""
    from edgeae.training.train import TrainConfig, train

    parser = argparse.ArgumentParser(prog="edgeae.training.distributed")
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    ctx = None
    try:
        cfg = from_dict(TrainConfig, json.loads(args.config_json), where="--config-json")
        ctx = DistContext.from_env(cfg.device)
        train(cfg, args.out, resume=args.resume, dist=ctx)
    except EdgeAEError as e:
        print(f"edgeae train (rank {os.environ.get('RANK', '?')}): error: {e}", file=sys.stderr)
        return 2
    finally:
        if ctx:
            ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
