"""The `edgeae` command: a table of verbs, each a thin function that calls one stage.

Stage modules are imported inside each verb, so `edgeae run` works on a device without torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from edgeae.errors import EdgeAEError

EXAMPLES = """examples:
  edgeae train --data data/opencv/vtest.avi --epochs 10 --out runs/demo
  edgeae export runs/demo --real-frames data/opencv/vtest.avi
  edgeae reconstruct runs/demo data/opencv/vtest.avi --out demo/side_by_side.png
  edgeae bench runs/demo
  edgeae doctor
"""


def cmd_train(args: argparse.Namespace) -> int:
    from edgeae.training.model import ModelConfig
    from edgeae.training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, task=args.task, noise=args.noise, noise_level=args.noise_level / 255,
                      model=ModelConfig.named(args.arch), epochs=args.epochs, batch_size=args.batch_size,
                      samples_per_epoch=args.samples_per_epoch, max_images=args.max_images, lr=args.lr,
                      seed=args.seed, device=args.device)
    result = train(cfg, args.out, resume=args.resume)
    print(f"trained {args.out}: best validation MSE {result['best_val_loss']:.5f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edgeae.export.onnx_export import ExportConfig, export_onnx

    cfg = ExportConfig(checkpoint=args.checkpoint, opset=args.opset, real_frames=args.real_frames or "")
    export_onnx(args.run, cfg)
    print(f"wrote {args.run}/encoder.onnx, {args.run}/decoder.onnx and export_report.json")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from edgeae.runtime.autoencoder import Autoencoder
    from edgeae.runtime.sources import iter_frames
    from edgeae.runtime.visualise import side_by_side, write_image

    if args.source == "synthetic":
        import cv2

        from edgeae.training.data import synthetic_images

        frame = cv2.cvtColor(synthetic_images(1, size=(288, 384), seed=123)[0], cv2.COLOR_RGB2BGR)
    else:
        frame = next(iter_frames(args.source, limit=1))
    with Autoencoder.load(args.run, backend=args.backend) as ae:
        recon = ae.reconstruct([frame])[0]
    image, psnr = side_by_side(frame, recon)
    write_image(args.out, image)
    print(f"wrote {args.out}: input | reconstruction, PSNR {psnr:.2f} dB")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edgeae.config import atomic_write_json
    from edgeae.runtime.benchmark import device_bench, format_device_bench

    report = device_bench(args.run, quick=args.quick, threads=args.threads)
    print(format_device_bench(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from edgeae.doctor import report

    print(report(probe_cameras=not args.no_cameras))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeae", description="Convolutional autoencoders from PyTorch to edge devices.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("train", help="train an autoencoder into a run folder")
    p.add_argument("--data", default="synthetic", help="folder, video, 'synthetic', 'cifar:PATH' or 'camera:N'")
    p.add_argument("--out", default="runs/default", help="run folder to write")
    p.add_argument("--task", default="reconstruct", choices=["reconstruct", "denoise"])
    p.add_argument("--noise", default="gaussian", choices=["gaussian", "salt_pepper", "poisson"])
    p.add_argument("--noise-level", type=float, default=25.0, help="gaussian σ in 0..255 units (default 25)")
    p.add_argument("--arch", default="seed", help="architecture: seed (default) or wide")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--samples-per-epoch", type=int, default=16384)
    p.add_argument("--max-images", type=int, default=200, help="images/frames loaded from --data")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export encoder.onnx and decoder.onnx, check parity with PyTorch")
    p.add_argument("run", help="run folder written by 'edgeae train'")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--real-frames", help="video/image/folder used for parity on real inputs")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reconstruct", help="reconstruct one frame and save input | output side by side")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("source", help="image, video (first frame), image folder, or 'synthetic'")
    p.add_argument("--out", default="demo/side_by_side.png")
    p.add_argument("--backend", default="onnxruntime")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("bench", help="latency and parity of every backend this device can run (torch-free)")
    p.add_argument("run", help="run or model folder with encoder.onnx and decoder.onnx (and engines, if built)")
    p.add_argument("--quick", action="store_true", help="two small shapes, short timing: a smoke test")
    p.add_argument("--threads", type=int, default=0, help="threads for every backend (default: this process's cores)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="what this machine has: torch, ONNX Runtime providers, TensorRT, GPU, cameras")
    p.add_argument("--no-cameras", action="store_true", help="do not try to open cameras")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error) so tests can call it in-process."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except EdgeAEError as e:
        print(f"edgeae {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeae {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
