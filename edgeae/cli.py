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
  edgeae train --data data/opencv/vtest.avi --epochs 10 --out runs/ddp --nproc 2
  edgeae export runs/demo --real-frames data/opencv/vtest.avi
  edgeae reconstruct runs/demo data/opencv/vtest.avi --out demo/side_by_side.png
  edgeae bench runs/demo
  edgeae deploy runs/demo --target jetson --out dist/ [--host user@device]
  edgeae calibrate runs/demo --data data/opencv/vtest.avi --frames 200
  edgeae run runs/demo --task anomaly --source data/opencv/vtest.avi --out-video demo/anomaly.avi --events demo/events.jsonl
  edgeae compress data/opencv/vtest.avi demo/vtest.eae --model runs/demo --bits 8
  edgeae decompress demo/vtest.eae demo/vtest_decoded.avi --model runs/demo
  edgeae augment runs/demo --data data/opencv/vtest.avi --n 16 --out demo/augment
  edgeae build runs/demo --precision fp16
  edgeae doctor
"""


def cmd_train(args: argparse.Namespace) -> int:
    from edgeae.training.model import ModelConfig
    from edgeae.training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, task=args.task, noise=args.noise, noise_level=args.noise_level / 255,
                      model=ModelConfig.named(args.arch), epochs=args.epochs, batch_size=args.batch_size,
                      samples_per_epoch=args.samples_per_epoch, max_images=args.max_images, lr=args.lr,
                      crop_size=args.crop_size, seed=args.seed, device=args.device)
    if args.nproc * args.nnodes > 1:
        return _train_distributed(cfg, args)
    result = train(cfg, args.out, resume=args.resume)
    print(f"trained {args.out}: best validation MSE {result['best_val_loss']:.5f}")
    return 0


def _train_distributed(cfg, args: argparse.Namespace) -> int:
    import json

    from edgeae.training.distributed import LaunchConfig, launch

    launch(cfg, args.out, LaunchConfig(nproc=args.nproc, nnodes=args.nnodes, node_rank=args.node_rank,
                                       master_addr=args.master_addr, master_port=args.master_port), resume=args.resume)
    if args.node_rank == 0:
        best = json.loads((Path(args.out) / "metrics.json").read_text())["best_val_loss"]
        print(f"trained {args.out} on {args.nproc * args.nnodes} processes: best validation MSE {best:.5f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edgeae.export.onnx_export import ExportConfig, export_onnx

    cfg = ExportConfig(checkpoint=args.checkpoint, opset=args.opset, real_frames=args.real_frames or "",
                       decoder_form=args.decoder_form)
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


def cmd_bench(args: argparse.Namespace) -> int:
    from edgeae.config import atomic_write_json
    from edgeae.runtime.benchmark import device_bench, format_device_bench

    report = device_bench(args.run, quick=args.quick, threads=args.threads)
    print(format_device_bench(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from edgeae.export.bundle import DeployConfig, deploy, install_over_ssh

    cfg = DeployConfig(target=args.target, name=args.name or "", source=args.source, wheels=args.wheels or "")
    archive = deploy(args.run, cfg, args.out)
    print(f"wrote {archive} (+ .sha256); on the device: tar xzf {archive.name} && ./{archive.name[:-7]}/install.sh")
    if args.host:
        install_over_ssh(archive, args.host)
        print(f"installed on {args.host}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from edgeae.runtime.tasks.anomaly import AnomalyConfig, calibrate_run

    cfg = AnomalyConfig(quantile=args.quantile, margin=args.margin, scale=args.scale, smoothing=args.smoothing,
                        top_k=args.top_k, consecutive=args.consecutive,
                        reference="" if args.no_reference else AnomalyConfig.reference)
    options = {"threads": args.threads} if args.threads else {}
    result = calibrate_run(args.run, args.data, cfg, limit=args.frames, backend=args.backend,
                           precision=args.precision, **options)
    print(f"wrote {args.run}/anomaly.json: threshold {result.threshold:.6g} from {result.frames} frames "
          f"(scores mean {result.score_mean:.6g}, max {result.score_max:.6g})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import json
    import logging

    from edgeae.runtime.pipeline import RunConfig, format_profile, run

    logging.basicConfig(level=logging.INFO, format="edgeae run: %(message)s")
    cfg = RunConfig(run=args.run, task=args.task, sources=tuple(args.source or ()), backend=args.backend,
                    precision=args.precision, threads=args.threads, out_video=args.out_video or "",
                    out_frames=args.out_frames or "", events=args.events or "", show=args.show,
                    side_by_side=args.side_by_side, max_frames=args.max_frames)
    summary = run(cfg)
    print(format_profile(summary) if args.profile else
          f"{summary['frames']} frames at {summary['fps']:.1f} frames/s; events: {json.dumps(summary['events'])}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from edgeae.runtime.tasks.compress import CompressConfig, compress

    cfg = CompressConfig(source=args.source, out=args.out, model=args.model, bits=args.bits, backend=args.backend,
                         precision=args.precision, batch_size=args.batch_size, limit=args.limit or 0,
                         measure=not args.no_quality)
    s = compress(cfg)
    quality = f"PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}" if s["psnr"] is not None else "quality not measured"
    skipped = f", skipped {s['skipped']} frame(s) of another size" if s["skipped"] else ""
    print(f"wrote {args.out}: {s['frames']} frames, {s['bytes']} bytes, {s['bpp']:.4f} bits per pixel, {quality}{skipped}")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from edgeae.runtime.tasks.compress import DecompressConfig, decompress

    cfg = DecompressConfig(source=args.source, out=args.out, model=args.model, backend=args.backend,
                           precision=args.precision, batch_size=args.batch_size)
    result = decompress(cfg)
    for line in result["problems"]:
        print(f"edgeae decompress: warning: {line}", file=sys.stderr)
    print(f"wrote {args.out}: {result['frames']} frames" + ("" if result["complete"] else " (incomplete: see warnings)"))
    return 0 if result["complete"] else 1


def cmd_augment(args: argparse.Namespace) -> int:
    from edgeae.runtime.tasks.augment import AugmentConfig, augment

    cfg = AugmentConfig(run=args.run, data=args.data, out=args.out, n=args.n, samples=args.samples,
                        noise=args.noise, mode=args.mode, seed=args.seed, backend=args.backend,
                        precision=args.precision)
    result = augment(cfg)
    print(f"wrote {result['images']} images and {result['contact_sheet']} to {args.out}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from edgeae.doctor import report

    print(report(probe_cameras=not args.no_cameras))
    return 0


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend and --precision, the same for every verb that runs the model."""
    from edgeae.runtime.backends import BACKENDS

    p.add_argument("--backend", default="onnxruntime", choices=[*BACKENDS, "auto"],
                   help="onnxruntime (default), tensorrt, opencv-dnn, or auto (TensorRT where it can run)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"],
                   help="which exported files the backend runs (fp16/int8 after 'edgeae build')")


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
    p.add_argument("--crop-size", type=int, default=32,
                   help="training crop side (default 32, the seed's input); 128 for models run on whole frames")
    p.add_argument("--max-images", type=int, default=200, help="images/frames loaded from --data")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--nproc", type=int, default=1, help="processes per machine (DDP through torchrun; GPUs per machine on CUDA)")
    p.add_argument("--nnodes", type=int, default=1, help="machines taking part; run the same command on each with its --node-rank")
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1", help="address of the --node-rank 0 machine (with --nnodes > 1)")
    p.add_argument("--master-port", type=int, default=29500)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export encoder.onnx and decoder.onnx, check parity with PyTorch")
    p.add_argument("run", help="run folder written by 'edgeae train'")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--real-frames", help="video/image/folder used for parity on real inputs")
    p.add_argument("--decoder-form", default="depth_to_space", choices=["depth_to_space", "conv_transpose"],
                   help="decoder layers in the ONNX: the exact Conv+DepthToSpace rewrite (faster) or ConvTranspose")
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
    _add_backend_options(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("bench", help="latency and parity of every backend this device can run (torch-free)")
    p.add_argument("run", help="run or model folder with encoder.onnx and decoder.onnx (and engines, if built)")
    p.add_argument("--quick", action="store_true", help="two small shapes, short timing: a smoke test")
    p.add_argument("--threads", type=int, default=0, help="threads for every backend (default: this process's cores)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("deploy", help="one tar.gz with models, runtime wheel, install.sh and systemd unit")
    p.add_argument("run", help="run folder after 'edgeae export' (and 'edgeae build', 'edgeae calibrate')")
    p.add_argument("--target", default="cpu", choices=["jetson", "gpu", "cpu"])
    p.add_argument("--out", default="dist", help="folder for NAME.tar.gz and NAME.tar.gz.sha256")
    p.add_argument("--name", help="bundle name (default edgeae-<run>-<target>)")
    p.add_argument("--source", default="0", help="what the service reads: camera index, video, URL or GStreamer pipeline")
    p.add_argument("--wheels", help="folder of extra wheels to ship, for devices without internet")
    p.add_argument("--host", help="user@device: copy the bundle there over ssh and run install.sh")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("calibrate", help="set the anomaly threshold from normal footage (writes RUN/anomaly.json)")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--data", required=True, help="normal footage: video, image folder or camera index")
    p.add_argument("--frames", type=int, default=200, help="first N frames are used (default 200)")
    p.add_argument("--quantile", type=float, default=0.995, help="threshold = this quantile of the scores × margin")
    p.add_argument("--margin", type=float, default=1.25)
    p.add_argument("--scale", type=int, default=4, help="error map is averaged to 1/scale of each side")
    p.add_argument("--smoothing", type=int, default=5, help="box blur side on the reduced map")
    p.add_argument("--top-k", type=int, default=64, help="frame score = mean of the top-k reduced-map pixels")
    p.add_argument("--consecutive", type=int, default=3, help="anomalous frames in a row before an alarm")
    p.add_argument("--no-reference", action="store_true", help="no per-location reference map (moving cameras)")
    _add_backend_options(p)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("run", help="run a task on cameras, streams, videos or image folders")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--task", default="anomaly", choices=["anomaly", "denoise", "reconstruct"])
    p.add_argument("--source", action="append", metavar="SRC",
                   help="camera index, video, image folder, rtsp:// or http:// URL, GStreamer pipeline; repeatable")
    _add_backend_options(p)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    p.add_argument("--out-video", help="annotated Motion-JPEG .avi (one per source: NAME_i.avi)")
    p.add_argument("--out-frames", help="folder for one JPEG per frame")
    p.add_argument("--events", help="JSON-lines file of per-frame scores, alarms, gaps")
    p.add_argument("--show", action="store_true", help="show a window per source ('q' stops)")
    p.add_argument("--side-by-side", action="store_true", help="denoise/reconstruct: write input | output")
    p.add_argument("--max-frames", type=int, default=0, help="stop each source after N frames (0: run to its end)")
    p.add_argument("--profile", action="store_true", help="print mean ms per stage")
    p.set_defaults(func=cmd_run)


    p = sub.add_parser("compress", help="compress an image or video into an .eae bitstream; prints bpp, PSNR, SSIM")
    p.add_argument("source", help="image, image folder, video file or camera index")
    p.add_argument("out", help="bitstream to write (.eae); OUT.json gets the config and stats")
    p.add_argument("--model", required=True, help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--bits", type=int, default=8, help="bits per latent symbol, 1-16 (default 8)")
    p.add_argument("--limit", type=int, help="compress at most this many frames")
    p.add_argument("--no-quality", action="store_true", help="skip decoding for PSNR/SSIM: runs the encoder only")
    p.add_argument("--batch-size", type=int, default=4)
    _add_backend_options(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode an .eae bitstream to an image, image folder or video")
    p.add_argument("source", help=".eae file written by 'edgeae compress'")
    p.add_argument("out", help=".png/.jpg for one frame, .avi/.mp4 for a video, otherwise a folder of PNGs")
    p.add_argument("--model", required=True, help="the run folder that compressed it (checked by sha256)")
    p.add_argument("--batch-size", type=int, default=4)
    _add_backend_options(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("augment", help="new images from perturbed and interpolated latents of real samples")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--data", required=True, help="image, image folder or video to take real samples from")
    p.add_argument("--n", type=int, default=16, help="images to generate")
    p.add_argument("--out", default="demo/augment", help="folder for the PNGs, contact_sheet.png and augment.json")
    p.add_argument("--samples", type=int, default=16, help="real samples to encode (spread over a video)")
    p.add_argument("--noise", type=float, default=0.5, help="perturbation σ in units of each channel's latent std")
    p.add_argument("--mode", default="both", choices=["both", "perturb", "interpolate"])
    p.add_argument("--seed", type=int, default=0)
    _add_backend_options(p)
    p.set_defaults(func=cmd_augment)

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
