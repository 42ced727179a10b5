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
  edgeae build runs/demo --precision fp16
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


def cmd_build(args: argparse.Namespace) -> int:
    from edgeae.export.tensorrt_build import BuildConfig, build_run, parse_shape

    shapes = {k: parse_shape(v, f"--{k}") for k, v in (("min", args.min), ("opt", args.opt), ("max", args.max))}
    cfg = BuildConfig(precision=args.precision, flavour=args.flavour, min_shape=shapes["min"], opt_shape=shapes["opt"],
                      max_shape=shapes["max"], workspace_mb=args.workspace_mb, calib_frames=args.calib_frames,
                      calib_data=args.calib_data or "")
    build_run(args.run, cfg)
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
    with Autoencoder.load(args.run, backend=args.backend, precision=args.precision) as ae:
        recon = ae.reconstruct([frame])[0]
    image, psnr = side_by_side(frame, recon)
    write_image(args.out, image)
    print(f"wrote {args.out}: input | reconstruction, PSNR {psnr:.2f} dB")
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

    p = sub.add_parser("build", help="build TensorRT engines (and fp16 / int8 Q/DQ ONNX) for a run")
    p.add_argument("run", help="run folder after 'edgeae export'")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--flavour", default="auto", choices=["auto", "tensorrt", "tensorrt-rtx"])
    p.add_argument("--min", default="1x32x32", help="smallest input NxHxW of the profile (default 1x32x32)")
    p.add_argument("--opt", default="1x576x768", help="input NxHxW TensorRT tunes for (default 1x576x768)")
    p.add_argument("--max", default="32x1088x1920", help="largest input NxHxW (default 32x1088x1920)")
    p.add_argument("--workspace-mb", type=int, default=0, help="builder workspace limit (default: TensorRT's)")
    p.add_argument("--calib-frames", type=int, default=32, help="int8: calibration frames (default 32)")
    p.add_argument("--calib-data", help="int8: calibration source (default: the run's training data)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("reconstruct", help="reconstruct one frame and save input | output side by side")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("source", help="image, video (first frame), image folder, or 'synthetic'")
    p.add_argument("--out", default="demo/side_by_side.png")
    p.add_argument("--backend", default="onnxruntime", help="onnxruntime, tensorrt or auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.set_defaults(func=cmd_reconstruct)

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
