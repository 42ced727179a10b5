"""The training loop: seeded, resumable, interrupt-safe; writes a self-describing run folder.

Run folder:
  config.json    TrainConfig (with the ModelConfig inside) — the next stages read it
  best.pt        state dict with the lowest validation loss
  last.pt        state dict + optimiser state of the last complete epoch (for --resume)
  metrics.json   per-epoch losses and validation PSNR
  loss.png       the loss curves
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
import typing
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgeae.config import atomic_write_bytes, atomic_write_json, load_config, save_config
from edgeae.errors import EdgeAEError
from edgeae.outputs import OutputLock
from edgeae.training import data as data_layer
from edgeae.training.model import Autoencoder, ModelConfig, load_state
from edgeae.training.noise import NOISE_KINDS, add_noise

if typing.TYPE_CHECKING:
    from edgeae.training.distributed import DistContext


@dataclass(frozen=True)
class TrainConfig:
    data: str = "synthetic"
    task: str = "reconstruct"  # or "denoise": noisy input → clean target
    noise: str = "gaussian"
    noise_level: float = 25 / 255
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 10
    batch_size: int = 128
    samples_per_epoch: int = 16384
    val_samples: int = 2048
    val_fraction: float = 0.15
    max_images: int = 200
    crop_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": annealed to 0 over all epochs' steps
    grad_clip: float = 0.0  # > 0: clip the gradients' global norm to this (a loss spike cannot derail training)
    rd_lambda: float = 0.01  # codecs only: the loss is rd_lambda·255²·MSE + bits per pixel (higher: higher rate)
    init: str = ""  # a run folder whose best.pt starts the weights (fine-tuning a codec to another rd_lambda)
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if self.task not in ("reconstruct", "denoise"):
            raise EdgeAEError(f"task {self.task!r} is not 'reconstruct' or 'denoise'")
        if self.noise not in NOISE_KINDS:
            raise EdgeAEError(f"noise {self.noise!r} is not one of {', '.join(NOISE_KINDS)}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise EdgeAEError(f"lr schedule {self.lr_schedule!r} is not 'constant' or 'cosine'")
        if self.model.codec and self.task != "reconstruct":
            raise EdgeAEError(f"architecture {self.model.name} is a codec; train it with --task reconstruct")
        if not (math.isfinite(self.rd_lambda) and self.rd_lambda > 0):
            raise EdgeAEError(f"rd_lambda {self.rd_lambda} must be a positive number")
        if self.crop_size % self.model.downsample:
            raise EdgeAEError(f"crop size {self.crop_size} is not a multiple of {self.model.downsample}")
        for name in ("epochs", "batch_size", "samples_per_epoch", "val_samples", "max_images"):
            if getattr(self, name) < 1:
                raise EdgeAEError(f"{name} must be at least 1")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EdgeAEError("device cuda asked for, but torch sees no CUDA GPU; use --device cpu or a CUDA build of torch")
    return torch.device(name)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save through temp file + rename: an interrupt never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgeAEError(f"checkpoint {path} not found; train first ('edgeae train') or pass the run folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zip, …
        raise EdgeAEError(f"checkpoint {path} cannot be read ({type(e).__name__}); it is damaged or not an edgeae checkpoint") from None


def load_model(run_dir: str | os.PathLike, which: str = "best") -> tuple[Autoencoder, TrainConfig, dict]:
    """Rebuild the trained model from a run folder: (model in eval mode, its config, the checkpoint)."""
    run_dir = Path(run_dir)
    cfg = load_config(TrainConfig, run_dir / "config.json")
    ckpt = load_checkpoint(run_dir / f"{which}.pt")
    model = Autoencoder(cfg.model)
    load_state(model, ckpt["model"], str(run_dir / f"{which}.pt"))
    return model.eval(), cfg, ckpt


def _batches(crops: np.ndarray, cfg: TrainConfig, rng: np.random.Generator, device: torch.device):
    """Yield (input, target) float tensors NCHW in [0,1]."""
    for start in range(0, len(crops), cfg.batch_size):
        clean = crops[start:start + cfg.batch_size].astype(np.float32) / 255.0
        noisy = add_noise(clean, cfg.noise, cfg.noise_level, rng) if cfg.task == "denoise" else clean
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device)
        yield to_t(noisy), to_t(clean)


def _loss(net: nn.Module, model: Autoencoder, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    """The batch's loss and its parts: MSE, or for a codec λ·255²·MSE + bits per pixel."""
    if not model.cfg.codec:
        mse = nn.functional.mse_loss(net(x), y)
        return mse, {"mse": mse.item()}
    recon, bpp = model.rate_distortion(x)  # not through a DDP wrapper: codecs train on one process
    mse = nn.functional.mse_loss(recon, y)
    return cfg.rd_lambda * 255 ** 2 * mse + bpp, {"mse": mse.item(), "bpp": bpp.item()}


def _evaluate(model: Autoencoder, crops: np.ndarray, cfg: TrainConfig, device: torch.device) -> dict:
    """Mean loss and parts over the validation crops (a codec's latent rounded, its rate from the model)."""
    model.eval()
    sums: dict[str, float] = {}
    batches = 0
    rng = np.random.default_rng(cfg.seed + 1)  # the same noisy validation set every epoch
    with torch.no_grad():
        for x, y in _batches(crops, cfg, rng, device):
            loss, parts = _loss(model, model, x, y, cfg)
            for key, value in {"loss": loss.item(), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value * len(x)
            batches += len(x)
    return {key: value / batches for key, value in sums.items()}


def _lr_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch; "cosine" reaches 0 at the last step of the last epoch. The factor is computed
    from cfg at every step (only the step count is checkpointed), so a resume with other --epochs rescales it."""
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    steps = cfg.epochs * math.ceil(cfg.samples_per_epoch / cfg.batch_size)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))


def plot_losses(metrics: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in metrics]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train")
    ax.plot(epochs, [m["val_loss"] for m in metrics], "s-", label="validation")
    ax.set(xlabel="epoch", ylabel="MSE", yscale="log", title="edgeae training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite a run, and to resume one with another config (only --epochs may change)."""
    cfg.validate()
    if resume:
        saved = load_config(TrainConfig, run_dir / "config.json")
        if dataclasses.replace(saved, epochs=cfg.epochs) != cfg:
            raise EdgeAEError(f"--resume with a different config than {run_dir}/config.json; only --epochs may change")
    elif (run_dir / "last.pt").exists():
        raise EdgeAEError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")


def train(cfg: TrainConfig, run_dir: str | os.PathLike, resume: bool = False, progress: bool = True,
          dist: "DistContext | None" = None) -> dict:
    """Train (or resume) into `run_dir`; returns the final metrics dict. Ctrl-C keeps last.pt.

    dist: set inside a torchrun worker (see edgeae.training.distributed): each rank trains on its shard
    of every global batch; only rank 0 touches the run folder, and holds its lock: a second `train` on the
    same folder is refused instead of mixing checkpoints in.
    """
    run_dir = Path(run_dir)
    main_rank = dist is None or dist.is_main
    if main_rank:
        check_run_dir(cfg, run_dir, resume)
        run_dir.mkdir(parents=True, exist_ok=True)
    with OutputLock(run_dir, "run folder") if main_rank else nullcontext():
        return _train_locked(cfg, run_dir, resume, progress and main_rank, dist, main_rank)


def _train_locked(cfg: TrainConfig, run_dir: Path, resume: bool, progress: bool, dist: "DistContext | None",
                  main_rank: bool) -> dict:
    if main_rank:
        check_run_dir(cfg, run_dir, resume)  # again under the lock: a writer may have finished meanwhile
        save_config(cfg, run_dir / "config.json")

    torch.manual_seed(cfg.seed)
    device = dist.device if dist else pick_device(cfg.device)
    images = data_layer.load_images(cfg.data, max_images=cfg.max_images, seed=cfg.seed)
    images = data_layer.drop_smaller_than(images, cfg.crop_size)
    train_images, val_images = data_layer.split_train_val(images, cfg.val_fraction)
    val_crops = data_layer.random_crops(val_images, cfg.val_samples, cfg.crop_size, np.random.default_rng(cfg.seed + 2))

    model = Autoencoder(cfg.model)
    if cfg.init and not resume:
        init_model, init_cfg, _ = load_model(cfg.init)
        if init_cfg.model != cfg.model:
            raise EdgeAEError(f"--init {cfg.init} is architecture {init_cfg.model.name}, not {cfg.model.name}")
        model.load_state_dict(init_model.state_dict())
    if dist and cfg.model.codec:
        raise EdgeAEError("codecs train on one process; drop --nproc")
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = _lr_scheduler(optimizer, cfg)
    metrics: list[dict] = []
    start_epoch, best_val = 1, math.inf
    if resume:
        ckpt = dist.from_rank0(load_checkpoint, run_dir / "last.pt") if dist else load_checkpoint(run_dir / "last.pt")
        load_state(model, ckpt["model"], str(run_dir / "last.pt"))
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt:
            scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, best_val, metrics = ckpt["epoch"] + 1, ckpt["best_val"], list(ckpt["metrics"])
    net = dist.wrap(model) if dist else model

    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            # Per-epoch RNG: a resumed run sees exactly the crops and noise of an uninterrupted one.
            rng = np.random.default_rng([cfg.seed, epoch])
            crops = data_layer.random_crops(train_images, cfg.samples_per_epoch, cfg.crop_size, rng)
            batch_cfg = cfg
            if dist:
                crops, batch_cfg, rng = dist.shard(crops, cfg, epoch)
            net.train()
            t0, total, seen = time.perf_counter(), 0.0, 0
            bar = tqdm(_batches(crops, batch_cfg, rng, device), total=math.ceil(len(crops) / batch_cfg.batch_size),
                       desc=f"epoch {epoch}/{cfg.epochs}", disable=None if progress else True, leave=False)
            for x, y in bar:
                loss, _ = _loss(net, model, x, y, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(x)
                seen += len(x)
                bar.set_postfix(loss=f"{total / seen:.5f}")
            if dist:
                total, seen = dist.sum(total, seen)
            if not main_rank:
                continue
            val = _evaluate(model, val_crops, cfg, device)
            val_loss = val["loss"]
            row = {"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss,
                   "val_psnr_db": 10 * math.log10(1.0 / max(val["mse"], 1e-12)), "seconds": time.perf_counter() - t0}
            if "bpp" in val:
                row["val_bpp"] = val["bpp"]
            metrics.append(row)
            if progress:
                rate = f"  {row['val_bpp']:.3f} bpp" if "val_bpp" in row else ""
                print(f"epoch {epoch}/{cfg.epochs}  train {row['train_loss']:.5f}  val {val_loss:.5f}  "
                      f"PSNR {row['val_psnr_db']:.2f} dB{rate}  {row['seconds']:.1f}s", flush=True)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            if val_loss < best_val:
                best_val = val_loss
                save_checkpoint(run_dir / "best.pt", {"model": state, "epoch": epoch, "val_loss": val_loss})
            save_checkpoint(run_dir / "last.pt", {"model": state, "optimizer": optimizer.state_dict(),
                                                  "scheduler": scheduler.state_dict(),
                                                  "epoch": epoch, "best_val": best_val, "metrics": metrics})
            atomic_write_json(run_dir / "metrics.json", {"epochs": metrics, "best_val_loss": best_val})
    except KeyboardInterrupt:
        done = metrics[-1]["epoch"] if metrics else 0
        raise EdgeAEError(f"interrupted; {run_dir}/last.pt holds epoch {done}: continue with --resume") from None
    finally:
        if metrics and main_rank:
            plot_losses(metrics, run_dir / "loss.png")
    return {"epochs": metrics, "best_val_loss": best_val}
