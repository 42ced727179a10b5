"""The `edgeae` command: a table of verbs, each a thin function that calls one stage.

Stage modules are imported inside each verb, so `edgeae run` works on a device without torch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

from edgeae import __version__
from edgeae.errors import EdgeAEError
from edgeae.runtime.run_files import DECODER_FORMS

EXAMPLES = """examples:
  edgeae train --data data/opencv/vtest.avi --epochs 10 --out runs/demo
  edgeae train --data data/opencv/vtest.avi --epochs 10 --out runs/ddp --nproc 2
  edgeae export runs/demo --real-frames data/opencv/vtest.avi
  edgeae reconstruct runs/demo data/opencv/vtest.avi --out demo/side_by_side.png
  edgeae bench runs/demo
  edgeae deploy runs/demo --target jetson --out dist/ [--host user@device]
  edgeae calibrate runs/demo --data data/opencv/vtest.avi --frames 200
  edgeae run runs/demo --task anomaly --source data/opencv/vtest.avi --out-video demo/anomaly.avi --events demo/events.jsonl
  edgeae eval runs/demo --task anomaly --data demo/anomaly-set --json demo/eval.json
  edgeae compress data/opencv/vtest.avi demo/vtest.eae --model runs/demo --bits 8
  edgeae decompress demo/vtest.eae demo/vtest_decoded.avi --model runs/demo
  edgeae augment runs/demo --data data/opencv/vtest.avi --n 16 --out demo/augment
  edgeae build runs/demo --precision fp16
  edgeae doctor
  edgeae serve runs/demo --max-batch 8 --queue-delay-us 2000     (Triton on 127.0.0.1:8000; 'make serve-env' first)
  edgeae run runs/demo --backend triton --server 127.0.0.1:8000 --source data/opencv/vtest.avi --events demo/events.jsonl
"""


def cmd_train(args: argparse.Namespace) -> int:
    from edgeae.training.model import ModelConfig
    from edgeae.training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, task=args.task, noise=args.noise, noise_level=args.noise_level / 255,
                      model=ModelConfig.named(args.arch), epochs=args.epochs, batch_size=args.batch_size,
                      samples_per_epoch=args.samples_per_epoch, val_samples=args.val_samples,
                      max_images=args.max_images, lr=args.lr,
                      lr_schedule=args.lr_schedule, grad_clip=args.grad_clip, crop_size=args.crop_size, seed=args.seed,
                      device=args.device, rd_lambda=args.rd_lambda, init=args.init)
    if args.nproc * args.nnodes > 1:
        return _train_distributed(cfg, args)
    result = train(cfg, args.out, resume=args.resume)
    print(f"trained {args.out}: best validation {'loss' if cfg.model.codec else 'MSE'} {result['best_val_loss']:.5f}")
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
    if args.backend != "tensorrt":  # CPU runtimes have nothing to build: time the exported forms here, keep the fastest
        from edgeae.runtime.tuning import TuneConfig, tune

        backends = ("onnxruntime", "openvino") if args.backend == "openvino" else ("onnxruntime",)
        budget = {"budget_s": args.tune_seconds} if args.tune_seconds is not None else {}
        tune(args.run, TuneConfig(backends=backends, **budget))
        if args.backend == "openvino":  # its parity against ONNX Runtime goes into export_report.json
            from edgeae.export.openvino_parity import format_openvino_parity, record_openvino_parity

            print(format_openvino_parity(record_openvino_parity(args.run)))
        return 0
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
    from contextlib import nullcontext

    from edgeae.config import atomic_write_json
    from edgeae.outputs import OutputLock, refuse_overwriting_inputs
    from edgeae.runtime.benchmark import device_bench, format_device_bench, parse_shapes
    from edgeae.runtime.tasks.compress import model_files

    shapes = parse_shapes(args.shapes) if args.shapes else None
    backends = tuple(b.strip() for b in args.backends.split(",")) if args.backends else None
    if args.json:  # checked before the run, which takes minutes, not after it
        if Path(args.json).is_dir():
            raise EdgeAEError(f"--json {args.json} is a folder; give a file name, e.g. {Path(args.json) / 'bench.json'}")
        refuse_overwriting_inputs({"--json": args.json}, model_files(args.run))
    if backends and "triton" in backends:  # the models on a Triton server, timed from here (edgeae/serve/bench.py)
        from functools import partial

        from edgeae.serve.bench import remote_bench

        device_bench = partial(remote_bench, server=args.server)
    with OutputLock(args.json, "JSON report") if args.json else nullcontext():  # makes its folder, or says why not
        report = device_bench(args.run, quick=args.quick, threads=args.threads, backends=backends, shapes=shapes,
                              warmup=args.warmup, iterations=args.iterations, progress=True)
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

    from edgeae.runtime.pipeline import RunConfig, format_profile, run, run_logging

    cfg = RunConfig(run=args.run, task=args.task, sources=tuple(args.source or ()), backend=args.backend,
                    precision=args.precision, threads=args.threads, streams=args.streams, out_video=args.out_video or "",
                    out_frames=args.out_frames or "", events=args.events or "", show=args.show,
                    side_by_side=args.side_by_side, max_frames=args.max_frames,
                    reconnect_timeout=args.reconnect_timeout, threshold=args.threshold, out_maps=args.out_maps or "")
    if args.score_on_server and args.backend != "triton":
        raise EdgeAEError("--score-on-server sends frames to a Triton server: add --backend triton --server HOST:PORT")
    if args.backend == "triton":  # the model on a Triton server; sources, task and sinks stay here
        from edgeae.serve.client import RemoteRunConfig, run

        cfg = RemoteRunConfig.of(cfg, server=args.server, score_on_server=args.score_on_server)
    with run_logging():
        summary = run(cfg)
    print(format_profile(summary) if args.profile else
          f"{summary['frames']} frames at {summary['fps']:.1f} frames/s; events: {json.dumps(summary['events'])}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from edgeae.runtime.evaluate import EvalConfig, evaluate, format_results

    cfg = EvalConfig(run=args.run, task=args.task, data=args.data, backend=args.backend, precision=args.precision,
                     threads=args.threads, threshold=args.threshold, sigmas=tuple(args.sigma), seed=args.seed,
                     bits=tuple(args.bits), qualities=tuple(args.quality), levels=tuple(args.levels), limit=args.limit,
                     json=args.json or "")
    print(format_results(evaluate(cfg)))
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _number_in(kind: type, low, high=None) -> Callable[[str], int | float]:
    """argparse type: a `kind` (int/float) from `low` to `high` (None: no upper bound), else a usage error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value or (high is not None and value > high):  # `not <=` refuses nan too
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: {bounds}")
        return value
    return parse


def cmd_compress(args: argparse.Namespace) -> int:
    from edgeae.runtime.tasks.compress import CompressConfig, compress

    cfg = CompressConfig(source=args.source, out=args.out, model=args.model, bits=args.bits, backend=args.backend,
                         precision=args.precision, batch_size=args.batch_size, limit=args.limit or 0,
                         measure=not args.no_quality)
    s = compress(cfg)
    quality = f"PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}" if s["psnr"] is not None else "quality not measured"
    skipped = f", skipped {s['skipped']} frame(s) of another size" if s["skipped"] else ""
    print(f"wrote {args.out}: {s['frames']} frames, {s['bytes']} bytes, {s['bpp']:.4f} bits per pixel, {quality}{skipped}")
    if s["source_bytes"] is not None and s["bytes"] > s["source_bytes"]:
        print(f"edgeae compress: warning: {args.out} ({s['bytes']} bytes) is larger than its source "
              f"({s['source_bytes']} bytes): this input is already compressed better; keep the source, or try "
              f"fewer --bits", file=sys.stderr)
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

    print(report(probe_cameras=not args.no_cameras, run=args.run))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from edgeae.serve.config import ServeConfig
    from edgeae.serve.launch import serve

    cfg = ServeConfig(runs=tuple(args.runs), names=tuple(args.name or ()), address=args.address,
                      http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
                      max_batch=args.max_batch, queue_delay_us=args.queue_delay_us, instances=args.instances,
                      backend=args.backend, precision=args.precision or "", threads=args.threads,
                      exit_timeout_s=args.exit_timeout, log_file=args.log_file or "")
    return serve(cfg, python=args.serve_python or "")


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend and --precision, the same for every verb that runs the model."""
    from edgeae.runtime.backends import BACKENDS

    p.add_argument("--backend", default="auto", choices=[*BACKENDS, "auto"],
                   help="auto (default): TensorRT where it can run, else the form tuned on this device "
                        "('edgeae build RUN --backend onnxruntime'), else ONNX Runtime; or name one")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"],
                   help="which exported files the backend runs (fp16/int8 after 'edgeae build')")


def _parser() -> argparse.ArgumentParser:
    from edgeae.runtime.evaluate import LAYOUTS as EVAL_LAYOUTS
    from edgeae.runtime.tasks.base import TASKS

    parser = argparse.ArgumentParser(prog="edgeae", description="Convolutional autoencoders from PyTorch to edge devices.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction, help="print the versions of edgeae and its runtimes, and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("train", help="train an autoencoder into a run folder")
    p.add_argument("--data", default="synthetic", help="folder, video, 'synthetic', 'cifar:PATH' or 'camera:N'")
    p.add_argument("--out", default="runs/default", help="run folder to write")
    p.add_argument("--task", default="reconstruct", choices=["reconstruct", "denoise"])
    p.add_argument("--noise", default="gaussian",
                   choices=["gaussian", "salt_pepper", "poisson", "gaussian-blind", "poisson-gaussian"],
                   help="gaussian-blind / poisson-gaussian: strength drawn per crop up to --noise-level (blind denoiser)")
    p.add_argument("--noise-level", type=float, default=25.0,
                   help="gaussian σ in 0..255 units (default 25); the largest σ for the blind kinds")
    p.add_argument("--arch", default="seed", choices=_Architectures(), metavar="NAME",
                   help="%(choices)s: autoencoders, then residual denoisers")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--samples-per-epoch", type=int, default=1024, help="random crops drawn from the images each epoch")
    p.add_argument("--val-samples", type=int, default=2048, help="validation crops scored after each epoch")
    p.add_argument("--crop-size", type=int, default=128,
                   help="training crop side; models run on whole frames need large crops (README: 'Crop size'); "
                        "smaller images are skipped, with a count in the log; 32 for CIFAR-10")
    p.add_argument("--max-images", type=int, default=200, help="images/frames loaded from --data")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--grad-clip", type=float, default=0.0, help="clip the gradients' global norm (0: off)")
    p.add_argument("--rd-lambda", type=float, default=0.01,
                   help="codecs: loss = λ·255²·MSE + bits per pixel; larger λ, higher rate and quality (default 0.01)")
    p.add_argument("--init", default="", metavar="RUN",
                   help="start from RUN's best.pt (same architecture), e.g. to fine-tune a codec to another --rd-lambda")
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
    p.add_argument("--decoder-form", default="depth_to_space", choices=list(DECODER_FORMS),
                   help="decoder layers in decoder.onnx: the exact Conv+DepthToSpace rewrite, ConvTranspose as "
                        "trained, or the 2×2 phase rewrite; every form is also written for the tuner")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build", help="build TensorRT engines (and fp16 / int8 Q/DQ ONNX), or tune the CPU runtime, for a run")
    p.add_argument("run", help="run folder after 'edgeae export'")
    p.add_argument("--backend", default="tensorrt", choices=["tensorrt", "onnxruntime", "openvino"],
                   help="tensorrt (default): build engines; onnxruntime: time the exported forms and settings on this "
                        "machine and record the fastest in RUN/tuning.json; openvino: the same with OpenVINO's too")
    p.add_argument("--tune-seconds", type=float, default=None,
                   help="onnxruntime/openvino: time budget of the tuner's greedy stages (default 20; a whole tune "
                        "of the seed model took 33-48 s on 2 cores, more on a busy machine, 2026-11-28)")
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
    p.add_argument("--backends", metavar="NAME,...",
                   help="measure only these, of onnxruntime, opencv-dnn, tensorrt and tuned (the tuned default); "
                        "default: all that run here")
    p.add_argument("--shapes", metavar="NxCxHxW,...",
                   help="inputs to time, e.g. 1x3x576x768,8x3x32x32 (default: batches 1-256 of 3x32x32 and single "
                        "480x640 to 1088x1920 frames; --quick: two small ones)")
    p.add_argument("--warmup", type=_number_in(int, 0), help="untimed runs before each shape is timed (default 5; 2 with --quick)")
    p.add_argument("--iterations", type=_number_in(int, 1),
                   help="timed runs per shape (default: as many as fit in 2 s, 10 to 300; 0.3 s and 5 with --quick)")
    p.add_argument("--json", help="also write the numbers to this JSON file (its path is checked before the run)")
    p.add_argument("--server", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="--backends triton: the HTTP endpoint of the Triton server running 'edgeae serve RUN'")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("deploy", help="one tar.gz with models, runtime wheel, install.sh and systemd unit")
    p.add_argument("run", help="run folder after 'edgeae export' (and 'edgeae build', 'edgeae calibrate')")
    p.add_argument("--target", default="cpu", choices=["jetson", "gpu", "cpu", "server"],
                   help="server: Triton Inference Server for many cameras' clients ('edgeae serve' as a systemd unit)")
    p.add_argument("--out", default="dist", help="folder for NAME.tar.gz and NAME.tar.gz.sha256")
    p.add_argument("--name", help="bundle name (default edgeae-<run>-<target>)")
    p.add_argument("--source", default="0", help="what the service reads: camera index, video, URL or GStreamer pipeline")
    p.add_argument("--wheels", help="folder of extra wheels to ship, for devices without internet")
    p.add_argument("--host", help="user@device: copy the bundle there over ssh and run install.sh")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("calibrate", help="set the anomaly threshold from normal footage (writes RUN/anomaly.json)")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--data", required=True, help="normal footage: video, image folder or camera index")
    p.add_argument("--frames", type=_number_in(int, 1), default=200, help="first N frames are used (default 200)")
    # The ranges are AnomalyConfig.validate's (QUANTILE_RANGE, MARGIN_RANGE in runtime/tasks/anomaly.py).
    p.add_argument("--quantile", type=_number_in(float, 0.5, 1.0), default=0.995,
                   help="threshold = this quantile of the scores × margin, 0.5-1 (default 0.995)")
    p.add_argument("--margin", type=_number_in(float, 1.0, 100.0), default=1.25, help="1-100 (default 1.25)")
    p.add_argument("--scale", type=_number_in(int, 1), default=4, help="error map is averaged to 1/scale of each side")
    p.add_argument("--smoothing", type=_number_in(int, 1), default=5, help="box blur side on the reduced map")
    p.add_argument("--top-k", type=_number_in(int, 1), default=64, help="frame score = mean of the top-k reduced-map pixels")
    p.add_argument("--consecutive", type=_number_in(int, 1), default=3, help="anomalous frames in a row before an alarm")
    p.add_argument("--no-reference", action="store_true", help="no per-location reference map (moving cameras)")
    _add_backend_options(p)
    p.add_argument("--threads", type=_number_in(int, 0, 256), default=0, help="ONNX Runtime threads, 0-256 (0: its default)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("run", help="run a task on cameras, streams, videos or image folders")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--task", default="anomaly", choices=list(TASKS))
    p.add_argument("--source", action="append", metavar="SRC",
                   help="camera index, video, image folder, rtsp:// or http:// URL, GStreamer pipeline; repeatable")
    _add_backend_options(p)
    p.add_argument("--threads", type=_number_in(int, 0, 256), default=0,
                   help="ONNX Runtime threads, 0-256 (0: its default)")
    p.add_argument("--streams", type=_number_in(int, 0, 256), default=0,
                   help="video files and image folders: inference calls at once, the cores split between them "
                        "(0: the number 'edgeae build' measured fastest here, else 1); live sources always 1")
    p.add_argument("--out-video", help="annotated Motion-JPEG .avi (one per source: NAME_i.avi)")
    p.add_argument("--out-frames", help="folder for one JPEG per frame")
    p.add_argument("--events", help="JSON-lines file of per-frame scores, alarms, gaps")
    p.add_argument("--out-maps", metavar="DIR",
                   help="anomaly: each frame's per-pixel score map, float32 .npy named by frame index (DIR/i/ per source)")
    p.add_argument("--threshold", type=_number_in(float, 0),
                   help="anomaly: decide with this score threshold instead of the calibrated one")
    p.add_argument("--show", action="store_true", help="show a window per source ('q' stops)")
    p.add_argument("--side-by-side", action="store_true", help="denoise/reconstruct: write input | output")
    p.add_argument("--max-frames", type=_number_in(int, 0), default=0,
                   help="stop each source after N frames (0: run to its end)")
    p.add_argument("--reconnect-timeout", type=_number_in(float, 0), default=30.0, metavar="SECONDS",
                   help="a live source down (at the start or later) for longer than this fails the run; "
                        "0: retry until stopped, as a service should (default 30)")
    p.add_argument("--profile", action="store_true", help="print mean ms per stage")
    p.add_argument("--server", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="--backend triton: the HTTP endpoint of the Triton server running 'edgeae serve RUN'; "
                        "a lost server is retried like a camera, frames it could not take are `dropped` events")
    p.add_argument("--score-on-server", action="store_true",
                   help="--backend triton --task anomaly: send frames as captured (uint8) and let the server score "
                        "them with its calibration; decisions, alarms and outputs stay here (less traffic, more "
                        "cameras per server)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="serve runs on Triton Inference Server (dynamic batching) for many cameras")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders after 'edgeae export' (calibrated: +anomaly)")
    p.add_argument("--name", action="append", metavar="NAME",
                   help="served name per run, in order (default: the run folder's name): models NAME-encoder, …")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (0.0.0.0: every network)")
    p.add_argument("--http-port", type=_number_in(int, 1, 65535), default=8000)
    p.add_argument("--grpc-port", type=_number_in(int, 1, 65535), default=8001)
    p.add_argument("--metrics-port", type=_number_in(int, 1, 65535), default=8002, help="Prometheus /metrics")
    p.add_argument("--max-batch", type=_number_in(int, 1, 64), default=8,
                   help="largest batch the dynamic batcher forms, 1-64 (1: no batching)")
    p.add_argument("--queue-delay-us", type=_number_in(int, 0, 1_000_000), default=2000,
                   help="how long a request may wait for others to batch with, in microseconds")
    p.add_argument("--instances", type=_number_in(int, 1, 16), default=1, help="model instances, 1-16")
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "openvino", "tensorrt"],
                   help="what runs the model inside the server (auto: TensorRT where it can, else the tuned form)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], help="default: the tuned or fp32")
    p.add_argument("--threads", type=_number_in(int, 0, 256), default=0,
                   help="ONNX Runtime threads per instance (0: the tuned or default)")
    p.add_argument("--exit-timeout", type=_number_in(int, 0), default=30,
                   help="on SIGTERM, seconds the requests in flight may take to finish")
    p.add_argument("--serve-python", default=os.environ.get("SERVE_PYTHON") or None, metavar="PYTHON",
                   help="interpreter that runs the server (default: $SERVE_PYTHON, else .venv-serve's: "
                        "'make serve-env'; 'edgeae doctor' says which can)")
    p.add_argument("--log-file", help="Triton's own log (default: on stderr)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="score a model on labelled data: anomaly AUROC, denoise PSNR/SSIM, compress BD-rate",
                       epilog=EVAL_LAYOUTS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx (anomaly: calibrated)")
    p.add_argument("--task", required=True, choices=["anomaly", "denoise", "compress"])
    p.add_argument("--data", required=True, help="labelled data in the task's layout (below)")
    p.add_argument("--json", help="also write every number (and per image) to this JSON file; its config beside it")
    p.add_argument("--threshold", type=_number_in(float, 0), help="anomaly: precision/recall at this threshold "
                   "instead of the calibrated one")
    p.add_argument("--sigma", type=_number_in(int, 0, 255), nargs="+", default=[25],
                   help="denoise: Gaussian σ in 0-255 units added to clean images, one row each (default 25)")
    p.add_argument("--seed", type=_number_in(int, 0), default=0, help="denoise: noise seed (default 0)")
    p.add_argument("--bits", type=_number_in(int, 1, 16), nargs="+", default=[2, 3, 4, 5, 6, 8],
                   help="compress: latent bits per symbol, one point each (default 2 3 4 5 6 8)")
    p.add_argument("--quality", type=_number_in(int, 1, 100), nargs="+", default=[5, 10, 20, 30, 50, 70, 85, 95],
                   help="compress: JPEG and WebP qualities, one point each")
    p.add_argument("--levels", nargs="+", default=[], metavar="RUN",
                   help="compress, learned codecs: more quality levels on RUN's curve, e.g. models/codec-q*")
    p.add_argument("--limit", type=_number_in(int, 0), default=0,
                   help="at most N images per folder (frames of a video); 0: all")
    _add_backend_options(p)
    p.add_argument("--threads", type=_number_in(int, 0, 256), default=0, help="ONNX Runtime threads, 0-256 (0: its default)")
    p.set_defaults(func=cmd_eval)


    p = sub.add_parser("compress", help="compress an image or video into an .eae bitstream; prints bpp, PSNR, SSIM")
    p.add_argument("source", help="image, image folder, video file or camera index")
    p.add_argument("out", help="bitstream to write (.eae); OUT.json gets the config and stats")
    p.add_argument("--model", required=True, help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--bits", type=int, default=8,
                   help="autoencoders: bits per latent symbol, 1-16 (default 8); learned codecs (models/codec-q*) "
                        "range-code their rounded latent instead: pick the quality by the model")
    p.add_argument("--limit", type=_number_in(int, 1), help="compress at most this many frames")
    p.add_argument("--no-quality", action="store_true", help="skip decoding for PSNR/SSIM: runs the encoder only")
    p.add_argument("--batch-size", type=_number_in(int, 1, 256), default=4, help="frames per inference call, 1-256")
    _add_backend_options(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode an .eae bitstream to an image, image folder or video")
    p.add_argument("source", help=".eae file written by 'edgeae compress'")
    p.add_argument("out", help=".png/.jpg for one frame, .avi/.mp4 for a video, otherwise a folder of PNGs")
    p.add_argument("--model", required=True, help="the run folder that compressed it (checked by sha256)")
    p.add_argument("--batch-size", type=_number_in(int, 1, 256), default=4, help="frames per inference call, 1-256")
    _add_backend_options(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("augment", help="new images from perturbed and interpolated latents of real samples")
    p.add_argument("run", help="run folder with encoder.onnx and decoder.onnx")
    p.add_argument("--data", required=True, help="image, image folder or video to take real samples from")
    p.add_argument("--n", type=_number_in(int, 1), default=16, help="images to generate")
    p.add_argument("--out", default="demo/augment", help="folder for the PNGs, contact_sheet.png and augment.json")
    p.add_argument("--samples", type=_number_in(int, 1), default=16, help="real samples to encode (spread over a video)")
    p.add_argument("--noise", type=float, default=0.5, help="perturbation σ in units of each channel's latent std")
    p.add_argument("--mode", default="both", choices=["both", "perturb", "interpolate"])
    p.add_argument("--seed", type=int, default=0)
    _add_backend_options(p)
    p.set_defaults(func=cmd_augment)

    p = sub.add_parser("doctor", help="what this machine has: torch, ONNX Runtime providers, TensorRT, GPU, cameras")
    p.add_argument("run", nargs="?", help="also say which form and settings this run/model folder runs in here")
    p.add_argument("--no-cameras", action="store_true", help="do not try to open cameras")
    p.set_defaults(func=cmd_doctor)

    for p in sub.choices.values():
        _add_config_options(p)
    return parser


class _Architectures:
    """`--arch` choices: training/model.py's ARCHITECTURES, imported only when a value is checked or help is
    shown, so that every other verb starts without torch."""

    def _names(self) -> tuple[str, ...] | None:
        try:
            from edgeae.training.model import ARCHITECTURES
        except ImportError:  # no torch: 'edgeae train' says so itself
            return None
        return tuple(ARCHITECTURES)

    def __contains__(self, name: object) -> bool:
        names = self._names()
        return names is None or name in names

    def __iter__(self):
        return iter(self._names() or ("(install torch to list them)",))


RUNTIME_DISTRIBUTIONS = ("numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "onnxruntime-gpu",
                         "openvino", "torch")


def version_text() -> str:
    """'edgeae 0.1.0 (Python 3.11.7; numpy 2.1.0, onnxruntime 1.20.1, …)': the installed runtimes, none imported."""
    import platform
    from importlib import metadata

    found = []
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return f"edgeae {__version__} (Python {platform.python_version()}; {', '.join(found)})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _show_default(action: argparse.Action) -> None:
    """End the option's help with its default, unless the text already says what the default is."""
    text = action.help or ""
    if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
        action.help = f"{text} (default: %(default)s)" if text else "default: %(default)s"


# Options a --config file may not set: they are about the command line itself.
NOT_CONFIGURABLE = {"help", "config", "print_config"}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """--config and --print-config; every option's default shown in --help."""
    for action in p._actions:
        _show_default(action)
    p.add_argument("--config", metavar="FILE",
                   help="JSON (or YAML, with PyYAML) file of this verb's options, named as --print-config writes "
                        "them; options given on the command line win")
    p.add_argument("--print-config", action="store_true",
                   help="print every option as it would be used, as JSON (a --config file), and exit")


def _verb_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """name → the verb's parser (argparse keeps subparsers only in its private action list)."""
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """dest → action for everything a --config file may set: the verb's options and positionals."""
    return {a.dest: a for a in p._actions if a.dest not in NOT_CONFIGURABLE and a.dest != argparse.SUPPRESS}


def _make_optional(action: argparse.Action) -> None:
    action.required = False
    if not action.option_strings and action.nargs is None:
        action.nargs = "?"  # a positional then takes its default when the command line leaves it out


def _read_config(path: str) -> dict:
    """A --config file's {option: value}; JSON, or YAML by suffix when PyYAML is installed."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise EdgeAEError(f"cannot read config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise EdgeAEError(f"config {path} is not a text file; give a JSON or YAML file") from None
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise EdgeAEError(f"config {path} is YAML, which needs PyYAML: pip install pyyaml, or write it as JSON") from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise EdgeAEError(f"config {path} is not valid YAML ({(str(e).splitlines() or [''])[0]})") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise EdgeAEError(f"config {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if not isinstance(values, dict):
        raise EdgeAEError(f"config {path} must map option names to values, like 'edgeae VERB --print-config' writes")
    return {str(k).lstrip("-").replace("-", "_"): v for k, v in values.items()}


def _config_value(action: argparse.Action, value, where: str):
    """A config value checked and converted exactly as the option's own type and choices check its flag."""
    if value is None:
        return None
    if action.nargs == 0:  # store_true and the like
        if not isinstance(value, bool):
            raise EdgeAEError(f"{where} is a switch: give true or false, not {json.dumps(value)}")
        return value
    many = isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*")
    items = value if many and isinstance(value, list) else [value]
    if not many and isinstance(value, list) or any(isinstance(v, (bool, list, dict)) for v in items):
        raise EdgeAEError(f"{where} takes {'a list of values' if many else 'one value'}, not {json.dumps(value)}")
    converted = []
    for item in items:
        try:
            item = action.type(str(item)) if action.type else str(item)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            raise EdgeAEError(f"{where}: {e}") from None
        if action.choices is not None and item not in action.choices:
            raise EdgeAEError(f"{where}: {item!r} is not one of {', '.join(map(str, action.choices))}")
        converted.append(item)
    return converted if many else converted[0]


def _apply_config(p: argparse.ArgumentParser, path: str, verb: str) -> dict[str, list]:
    """Make a config file's values the verb's defaults, so flags on the command line win; unknown names are
    refused. Returns the values of append options ('run --source'), which argparse would add flags to, not
    replace: the caller uses them only when the command line gives none."""
    options = _options(p)
    values = _read_config(path)
    unknown = sorted(set(values) - set(options))
    if unknown:
        raise EdgeAEError(f"config {path}: unknown option(s) {', '.join(unknown)} for 'edgeae {verb}'; "
                          f"'edgeae {verb} --print-config' lists the names")
    values = {dest: _config_value(options[dest], v, f"config {path}: {dest}") for dest, v in values.items()}
    appended = {d: v for d, v in values.items() if isinstance(options[d], argparse._AppendAction) and v is not None}
    for dest, value in values.items():
        if value is not None:
            _make_optional(options[dest])
    p.set_defaults(**{d: v for d, v in values.items() if d not in appended})
    return appended


def _config_request(argv: list[str]) -> tuple[str | None, bool]:
    """(--config FILE or None, --print-config?) as the verb's own parser reads argv, before required options are
    checked: a config file may supply them."""
    parser = _parser()
    verbs = _verb_parsers(parser)
    if not argv or argv[0] not in verbs or {"-h", "--help"} & set(argv):
        return None, False
    probe = verbs[argv[0]]
    for action in probe._actions:
        _make_optional(action)

    def fail(message: str):
        raise argparse.ArgumentError(None, message)

    probe.error = fail  # any usage error: the real parse below reports it, with the real usage line
    try:
        known, _ = probe.parse_known_args(argv[1:])
    except argparse.ArgumentError:
        return None, False
    return known.config, known.print_config


def _parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse the command line, with a --config file's values as the verb's defaults."""
    argv = sys.argv[1:] if argv is None else list(argv)
    config, print_config = _config_request(argv)
    parser = _parser()
    appended = {}
    if config or print_config:
        p = _verb_parsers(parser)[argv[0]]
        if print_config:  # print what is set, null for what is missing
            for action in _options(p).values():
                _make_optional(action)
        if config:
            appended = _apply_config(p, config, argv[0])
    args = parser.parse_args(argv)
    for dest, value in appended.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
    return parser, args


def _resolved_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    return {dest: getattr(args, dest) for dest in _options(_verb_parsers(parser)[args.verb])}


def _interrupt_on_sigterm() -> None:
    """SIGTERM (what systemd and `kill` send) takes the same path as Ctrl-C: outputs are finalised, exit 130."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error, 130 interrupted) so tests can call it in-process."""
    try:
        parser, args = _parse(argv)
    except EdgeAEError as e:  # a --config file that cannot be used
        verb = (list(argv) if argv is not None else sys.argv[1:])[0]
        print(f"edgeae {verb}: error: {e}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.print_config:
        print(json.dumps(_resolved_options(parser, args), indent=2, default=str))
        return 0
    _interrupt_on_sigterm()
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
