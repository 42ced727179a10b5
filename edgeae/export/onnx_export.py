"""Export encoder and decoder as two ONNX files and check them against PyTorch.

Writes into the run folder: encoder.onnx, decoder.onnx, export_config.json, export_report.json, and the
equivalent forms the device's tuner times (edgeae/runtime/tuning.py): the decoder in its other layer form
(decoder.{form}.onnx) and encoder→decoder fused into one graph per decoder form (autoencoder.{form}.onnx).
Each ONNX file carries the metadata the runtime needs (metadata_props, keys "edgeae.*").
"""

from __future__ import annotations

import dataclasses

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

import edgeae
from edgeae.config import atomic_write_bytes, atomic_write_json, save_config, to_dict
from edgeae.errors import EdgeAEError
from edgeae.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edgeae.runtime.engine_cache import sha256_file
from edgeae.runtime.entropy_codec import ENTROPY_TABLES, EntropyTables
from edgeae.runtime.run_files import DECODER_FORMS, decoder_form_name, form_names, fused_name, onnx_path
from edgeae.training.train import load_model

NORMALISATION = "RGB, float32 NCHW, uint8/255 in [0, 1]; output the same"


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: str = "best"
    opset: int = 18
    tolerance: float = 1e-5  # fp32 max abs error against PyTorch
    parity_shapes: tuple[tuple[int, int, int], ...] = ((1, 32, 32), (8, 32, 32), (2, 64, 96), (1, 576, 768))
    real_frames: str = ""  # a video/image/folder for parity on real inputs; "" = random only
    seed: int = 0
    # "depth_to_space": each ConvTranspose2d exported as the exact Conv2d + DepthToSpace rewrite, which ONNX
    # Runtime runs faster (768x576 decoder on 2 cores: 18.6 vs 25.8 ms) and can quantise to int8;
    # "conv_transpose": the layers as trained.
    decoder_form: str = "depth_to_space"
    # Also write the other decoder forms and the fused encoder→decoder graphs, so that 'edgeae build RUN
    # --backend onnxruntime' on the device can time them and keep the fastest (which form wins depends on the CPU).
    tuning_forms: bool = True
    # The forms written for the tuner. Recorded in export_config.json, so an export from before a form existed
    # reads as different (the bench re-exports its runs then).
    decoder_forms: tuple[str, ...] = DECODER_FORMS


def _export_one(module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str],
                out_dims: tuple[str, str], metadata: dict[str, str], opset: int) -> None:
    """torch.export-based ONNX export with dynamic batch/height/width, checked and annotated."""
    dim = torch.export.Dim.DYNAMIC
    # The exporter warns about torchvision ops it cannot register; they are not used here.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), None, input_names=[names[0]], output_names=[names[1]],
                                    dynamic_shapes=({0: dim, 2: dim, 3: dim},), opset_version=opset,
                                    dynamo=True, external_data=False, verbose=False)
    model = program.model_proto
    # Readable symbolic dims instead of the exporter's s0/s1 names.
    for value, dims in ((model.graph.input[0], ("batch", "height", "width")), (model.graph.output[0], ("batch",) + out_dims)):
        shape = value.type.tensor_type.shape.dim
        for axis, name in zip((0, 2, 3), dims):
            shape[axis].ClearField("dim_value")
            shape[axis].dim_param = name
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name, model.producer_version = "edgeae", edgeae.__version__
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    atomic_write_bytes(path, model.SerializeToString())


def decoder_file(run_dir: Path, form: str, cfg: ExportConfig) -> Path:
    """decoder.onnx holds cfg.decoder_form; decoder.{form}.onnx the other."""
    return onnx_path(run_dir, "decoder") if form == cfg.decoder_form else run_dir / decoder_form_name(form)


def fuse(encoder_path: Path, decoder_path: Path, out: Path, metadata: dict[str, str]) -> None:
    """One graph image → reconstruction from the exported encoder and decoder (same nodes, same weights):
    one ONNX Runtime session instead of two, and nothing between them to copy or wake."""
    encoder, decoder = onnx.load(str(encoder_path)), onnx.load(str(decoder_path))
    for part in (encoder, decoder):
        del part.metadata_props[:]
        del part.graph.value_info[:]  # the parts' symbolic dims would clash; shape inference redoes them
    # Both parts name their weights "0.weight", …: prefix them apart; the graph keeps "image" as its input.
    encoder = onnx.compose.add_prefix(encoder, "encoder/", rename_inputs=False)
    decoder = onnx.compose.add_prefix(decoder, "decoder/")
    for node in decoder.graph.node:
        node.output[:] = ["reconstruction" if o == "decoder/image" else o for o in node.output]
    decoder.graph.output[0].name = "reconstruction"
    model = onnx.compose.merge_models(encoder, decoder, io_map=[("encoder/latent", "decoder/latent")],
                                      producer_name="edgeae", producer_version=edgeae.__version__)
    for axis, name in zip((0, 2, 3), ("batch", "height", "width")):
        dim = model.graph.output[0].type.tensor_type.shape.dim[axis]
        dim.ClearField("dim_value")
        dim.dim_param = name
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    atomic_write_bytes(out, model.SerializeToString())


def export_files(model: torch.nn.Module, run_dir: Path, cfg: ExportConfig, base: dict[str, str]) -> None:
    """encoder.onnx, decoder.onnx and (cfg.tuning_forms) the other decoder forms and the fused graphs.

    The decoder is exported once, as trained; its other forms are rewritten from that ONNX's weights
    (depth_to_space_onnx, phase_onnx) — a second torch export would cost seconds per run."""
    s, c = model.cfg.downsample, model.cfg.latent_channels
    _export_one(model.encoder, torch.rand(2, 3, 2 * s, 3 * s), run_dir / "encoder.onnx", ("image", "latent"),
                ("latent_height", "latent_width"), {**base, "edgeae.role": "encoder"}, cfg.opset)
    convt = decoder_file(run_dir, "conv_transpose", cfg)
    _export_one(model.decoder, torch.rand(2, c, 2, 3), convt, ("latent", "image"), ("height", "width"),
                {**base, "edgeae.role": "decoder", "edgeae.decoder_form": "conv_transpose"}, cfg.opset)
    forms = tuple(dict.fromkeys((cfg.decoder_form, *cfg.decoder_forms))) if cfg.tuning_forms else (cfg.decoder_form,)
    if "depth_to_space" in forms:
        d2s = depth_to_space_onnx(onnx.load(str(convt)))
        atomic_write_bytes(decoder_file(run_dir, "depth_to_space", cfg), d2s.SerializeToString())
    if "phase" in forms:
        deconv = onnx.load(str(convt))
        if has_deconvolution(deconv) or cfg.decoder_form == "phase":  # without ConvTranspose it is decoder.onnx again
            atomic_write_bytes(decoder_file(run_dir, "phase", cfg), phase_onnx(deconv).SerializeToString())
    if "conv_transpose" not in forms:
        convt.unlink()
    if cfg.tuning_forms:
        for form in [f for f in forms if decoder_file(run_dir, f, cfg).is_file()]:
            fuse(run_dir / "encoder.onnx", decoder_file(run_dir, form, cfg), run_dir / fused_name(form),
                 {**base, "edgeae.role": "autoencoder", "edgeae.decoder_form": form})


def subpixel_kernel(weight: np.ndarray, bias: np.ndarray | None, kernel: int, pad: int) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Stride-2 ConvTranspose weights (C_in × C_out × k × k) as the stride-1 Conv with 4·C_out outputs that,
    followed by DepthToSpace(2, CRD), computes the same output; returns (weights, bias, the Conv's pads).

    Output row 2i+a reads input row i+d through deconvolution tap ky = a + pad − 2d; the Conv's window is the
    union of both phases' rows (k=4, p=1: i−1…i+1, so k'=3; k=5, p=2 as the codec's: also 3), and a tap a
    phase does not use stays zero. PixelShuffle/CRD puts Conv channel 4c + 2a + b at phase (a, b) of channel c."""
    c_in, c_out = weight.shape[:2]
    taps = {a: {(a + pad - ky) // 2: ky for ky in range(kernel) if (a + pad - ky) % 2 == 0} for a in (0, 1)}
    low = min(min(t) for t in taps.values())
    high = max(max(t) for t in taps.values())
    size = high - low + 1
    out = np.zeros((c_out, 2, 2, c_in, size, size), np.float32)
    for a in (0, 1):
        for b in (0, 1):
            for dy, ky in taps[a].items():
                for dx, kx in taps[b].items():
                    out[:, a, b, :, dy - low, dx - low] = weight[:, :, ky, kx].T
    bias = None if bias is None else np.repeat(bias, 4).astype(np.float32)
    return out.reshape(4 * c_out, c_in, size, size), bias, [-low, -low, high, high]


def _deconvolution(node: onnx.NodeProto, weights: dict, fix: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """A ConvTranspose node's weights, bias and attributes; refuses what the rewrites do not cover."""
    from onnx import helper, numpy_helper

    attrs = {a.name: list(helper.get_attribute_value(a)) for a in node.attribute if a.ints}
    kernel, strides, pads = attrs.get("kernel_shape", []), attrs.get("strides", [1, 1]), attrs.get("pads", [0] * 4)
    output_padding = attrs.get("output_padding", [0, 0])
    if strides != [2, 2] or len(set(kernel)) != 1 or len(set(pads)) != 1 or len(set(output_padding)) != 1 \
            or any(v != 1 for v in attrs.get("dilations", [1, 1])) or kernel[0] + output_padding[0] - 2 * pads[0] != 2:
        raise EdgeAEError(f"cannot rewrite {node.name} (ConvTranspose kernel {kernel}, stride {strides}, padding {pads}, "
                          f"output padding {output_padding}): only stride 2 with output = 2×input has that form; {fix}")
    bias = numpy_helper.to_array(weights[node.input[2]]) if len(node.input) > 2 else None
    return numpy_helper.to_array(weights[node.input[1]]), bias, {"kernel": kernel[0], "pad": pads[0]}


def _replace_weights(weights: dict, node: onnx.NodeProto, kernel: np.ndarray, bias: np.ndarray | None) -> None:
    """The rewritten Conv's weights under the deconvolution's own initializer names ("3.weight", …)."""
    from onnx import numpy_helper

    for name, array in zip(node.input[1:], (kernel, bias)):
        weights[name].CopyFrom(numpy_helper.from_array(array, name))


def _finish_rewrite(model: onnx.ModelProto, nodes: list, form: str) -> onnx.ModelProto:
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    del model.graph.value_info[:]  # the rewritten intermediates have other shapes; shape inference redoes them
    for prop in model.metadata_props:
        if prop.key == "edgeae.decoder_form":
            prop.value = form
    onnx.checker.check_model(model, full_check=True)
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def depth_to_space_onnx(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exported decoder with each stride-2 ConvTranspose replaced by its exact Conv + DepthToSpace(2, CRD)
    form (subpixel_kernel): ONNX Runtime runs it with its NCHWc Conv kernels where its ConvTranspose is
    im2col + GEMM, and it quantises to int8."""
    from onnx import helper

    weights = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "ConvTranspose":
            nodes.append(node)
            continue
        weight, bias, attrs = _deconvolution(node, weights, "export with --decoder-form conv_transpose")
        kernel, bias, pads = subpixel_kernel(weight, bias, **attrs)
        _replace_weights(weights, node, kernel, bias)
        phases = f"{node.output[0]}_phases"
        nodes += [helper.make_node("Conv", list(node.input), [phases], name=f"{node.name}_conv", kernel_shape=list(kernel.shape[2:]),
                                   pads=pads, strides=[1, 1]),
                  helper.make_node("DepthToSpace", [phases], list(node.output), name=f"{node.name}_depth_to_space",
                                   blocksize=2, mode="CRD")]
    return _finish_rewrite(model, nodes, "depth_to_space")


# Deconvolution tap (ky or kx) that output phase a reads at tap t of the 2×2 phase kernel (t = 0: the input row
# above, 1: the row itself, for phase 0; the row itself and the one below for phase 1).
PHASE_TAPS = {0: (3, 1), 1: (2, 0)}


def phase_kernel(weight: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """ConvTranspose(k=4, s=2, p=1) weights (C_in × C_out × 4 × 4) as one Conv(k=2, p=1) with 4·C_out outputs.

    That Conv's output (H+1)×(W+1) holds the four output phases: phase (a, b) of output pixel (2i+a, 2j+b) at
    row i+a, column j+b. The phases are stored in reverse order (slot (1−a, 1−b)), so DepthToSpace(2, DCR) puts
    every phase one pixel down and right of its place and a one-pixel crop on every side finishes the layer."""
    c_in, c_out = weight.shape[:2]
    kernel = np.zeros((2, 2, c_out, c_in, 2, 2), np.float32)
    for a in (0, 1):
        for b in (0, 1):
            for t in (0, 1):
                for u in (0, 1):
                    kernel[1 - a, 1 - b, :, :, t, u] = weight[:, :, PHASE_TAPS[a][t], PHASE_TAPS[b][u]].T
    return kernel.reshape(4 * c_out, c_in, 2, 2), None if bias is None else np.tile(bias, 4).astype(np.float32)


def has_deconvolution(model: onnx.ModelProto) -> bool:
    return any(node.op_type == "ConvTranspose" for node in model.graph.node)


def phase_onnx(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exported decoder with each ConvTranspose(k=4, s=2, p=1) as Conv(k=2, p=1, 4·C_out) → its activation →
    DepthToSpace(2, DCR) → crop 1 pixel (phase_kernel). Exact, with the deconvolution's 16·C_in·C_out
    multiply-adds per input pixel where the 3×3 Conv form spends 36 (5 of its 9 taps are zero for every phase),
    and with the activation before DepthToSpace so that runtimes fuse it into the Conv. OpenVINO 2026.4 on
    the AMD EPYC (AVX2), fused graph, 2 threads: 26.9 ms at 576×768 vs 34.6 (Conv+DepthToSpace) and 40.2
    (ConvTranspose); 134.5 vs 165.6 and 191.9 ms at 1088×1920."""
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, folded = [], set()
    for node in model.graph.node:
        if id(node) in folded:
            continue
        if node.op_type != "ConvTranspose":
            nodes.append(node)
            continue
        weight, bias, attrs = _deconvolution(node, weights, "export with --decoder-form conv_transpose")
        if attrs != {"kernel": 4, "pad": 1}:
            raise EdgeAEError(f"cannot rewrite {node.name}: only ConvTranspose kernel 4, stride 2, padding 1 has the "
                              "phase form; export with --decoder-form conv_transpose")
        kernel, bias = phase_kernel(weight, bias)
        name, inputs = node.name, list(node.input)
        _replace_weights(weights, node, kernel, bias)
        model.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), f"{name}_crop_{k}")
                                       for k, v in (("starts", [1, 1]), ("ends", [-1, -1]), ("axes", [2, 3])))
        phases, output = f"{name}_phases", list(node.output)
        nodes.append(helper.make_node("Conv", inputs, [phases], name=f"{name}_conv", kernel_shape=[2, 2],
                                      pads=[1, 1, 1, 1], strides=[1, 1]))
        after = consumers.get(node.output[0], [])
        if len(after) == 1 and after[0].op_type in ("Relu", "Sigmoid"):  # elementwise: commutes with the shuffle
            folded.add(id(after[0]))
            nodes.append(helper.make_node(after[0].op_type, [phases], [f"{phases}_act"], name=after[0].name))
            phases, output = f"{phases}_act", list(after[0].output)
        nodes += [helper.make_node("DepthToSpace", [phases], [f"{name}_shuffled"], name=f"{name}_depth_to_space",
                                   blocksize=2, mode="DCR"),
                  helper.make_node("Slice", [f"{name}_shuffled"] + [f"{name}_crop_{k}" for k in ("starts", "ends", "axes")],
                                   output, name=f"{name}_crop")]
    return _finish_rewrite(model, nodes, "phase")


def export_onnx(run_dir: str | os.PathLike, cfg: ExportConfig = ExportConfig(), progress: bool = True) -> dict:
    """Export RUN/encoder.onnx and RUN/decoder.onnx, check parity, write the report; returns it."""
    run_dir = Path(run_dir)
    model, train_cfg, _ = load_model(run_dir, cfg.checkpoint)
    mcfg = train_cfg.model
    base = {
        "edgeae.version": edgeae.__version__,
        "edgeae.architecture": json.dumps(to_dict(mcfg)),
        "edgeae.normalisation": NORMALISATION,
        "edgeae.downsample": str(mcfg.downsample),
        "edgeae.latent_channels": str(mcfg.latent_channels),
        "edgeae.task": train_cfg.task,
        "edgeae.checkpoint_sha256": sha256_file(run_dir / f"{cfg.checkpoint}.pt"),
        "edgeae.precision": "fp32",
    }
    if mcfg.codec:  # the runtime rounds the latent between encoder and decoder (runtime/entropy_codec.py)
        base["edgeae.latent"] = "rounded"
    for form in (cfg.decoder_form, *cfg.decoder_forms):
        if form not in DECODER_FORMS:
            raise EdgeAEError(f"decoder form {form!r} is not one of {', '.join(DECODER_FORMS)}")
    if mcfg.codec:
        # A codec's decoder runs on rounded latents: no fused graph (it would skip the rounding), so no tuning
        # forms; and its 5×5 ConvTranspose layers stay. Their 3×3 Conv + DepthToSpace form (subpixel_kernel) is
        # exact but not faster: codec-q4, 768×576, 2 threads, AMD EPYC, interleaved: ONNX Runtime 124 vs 131 ms
        # (its DepthToSpace is a plain 6-D transpose: 40 ms of the 124), OpenVINO 90 vs 81 ms.
        cfg = dataclasses.replace(cfg, decoder_form="conv_transpose", tuning_forms=False)
    for stale in [*form_names(), ENTROPY_TABLES]:  # derived from the previous export; the tuner must never time them
        (run_dir / stale).unlink(missing_ok=True)
    export_files(model, run_dir, cfg, base)
    if mcfg.codec:
        EntropyTables.from_arrays(**model.entropy_bottleneck.tables()).save(run_dir / ENTROPY_TABLES)
    save_config(cfg, run_dir / "export_config.json")
    report = check_parity(model, run_dir, cfg)
    atomic_write_json(run_dir / "export_report.json", report)
    if progress:
        print(format_parity_table(report))
    if not report["passed"]:
        worst = max(report["rows"], key=lambda r: r["max_scaled"])
        raise EdgeAEError(f"parity failed: {worst['model']} at {worst['shape']} ({worst['input']}) differs by "
                          f"{worst['max_scaled']:.2e} of its range > {cfg.tolerance:.0e}; see {run_dir}/export_report.json")
    return report


def _parity_inputs(cfg: ExportConfig, downsample: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(cfg.seed)
    inputs = [("random", rng.random((n, 3, h, w), dtype=np.float32)) for n, h, w in cfg.parity_shapes]
    if cfg.real_frames:
        import cv2

        from edgeae.runtime.preprocess import frames_to_batch
        from edgeae.runtime.sources import iter_frames

        frames = list(iter_frames(cfg.real_frames, limit=2))
        batch, _ = frames_to_batch(frames[:1], downsample)
        inputs.append(("real frame", batch))
        rgb = cv2.cvtColor(frames[-1], cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        if h >= 32 and w >= 32:
            ys, xs = rng.integers(0, h - 31, 16), rng.integers(0, w - 31, 16)
            crops = np.stack([rgb[y:y + 32, x:x + 32] for y, x in zip(ys, xs)]).astype(np.float32) / 255
            inputs.append(("real crops", np.ascontiguousarray(crops.transpose(0, 3, 1, 2))))
    return inputs


def _exported_forms(run_dir: Path, cfg: ExportConfig) -> dict[str, tuple[str, Path]]:
    """Report name → (what it is, file) of every form besides encoder.onnx/decoder.onnx this export wrote."""
    if not cfg.tuning_forms:
        return {}
    forms = {f"decoder.{f}": ("decoder", run_dir / decoder_form_name(f)) for f in cfg.decoder_forms if f != cfg.decoder_form}
    forms |= {f"fused.{f}": ("fused", run_dir / fused_name(f)) for f in dict.fromkeys((cfg.decoder_form, *cfg.decoder_forms))}
    return {name: (kind, path) for name, (kind, path) in forms.items() if path.is_file()}  # no phase form without ConvTranspose


def _error_row(name: str, kind: str, x: np.ndarray, got: np.ndarray, ref: np.ndarray, tolerance: float) -> dict:
    err = np.abs(got.astype(np.float64) - ref)
    # Images live in [0,1]; latents are unbounded ReLU outputs (tens on real frames), where fp32
    # summation order alone moves the last bits: judge those relative to their range.
    scale = max(1.0, float(np.abs(ref).max()))
    return {"model": name, "input": kind, "shape": list(x.shape), "max_abs": float(err.max()),
            "mean_abs": float(err.mean()), "range": scale, "max_scaled": float(err.max()) / scale,
            "passed": bool(err.max() / scale <= tolerance)}


def check_parity(model: torch.nn.Module, run_dir: Path, cfg: ExportConfig) -> dict:
    """ONNX Runtime (CPU, fp32) against PyTorch for encoder, decoder and the two chained, and for every
    equivalent form the tuner may pick (the other decoder form fed PyTorch's latent, each fused graph)."""
    cpu = {"providers": ["CPUExecutionProvider"]}
    encoder = OnnxRuntimeBackend.load(run_dir / "encoder.onnx", **cpu)
    decoder = OnnxRuntimeBackend.load(run_dir / "decoder.onnx", **cpu)
    forms = {name: (kind, OnnxRuntimeBackend.load(path, **cpu)) for name, (kind, path) in _exported_forms(run_dir, cfg).items()}
    rows = []
    with torch.no_grad():
        for kind, x in _parity_inputs(cfg, model.cfg.downsample):
            z_ref = model.encoder(torch.from_numpy(x))
            y_ref = model.decoder(z_ref).numpy()
            z_ort = encoder.infer({"image": x})["latent"]
            y_dec = decoder.infer({"latent": z_ref.numpy()})["image"]
            y_ort = decoder.infer({"latent": z_ort})["image"]
            outputs = [("encoder", z_ort, z_ref.numpy()), ("decoder", y_dec, y_ref), ("full", y_ort, y_ref)]
            for name, (part, session) in forms.items():
                got = session.infer({"latent": z_ref.numpy()} if part == "decoder" else {"image": x})
                outputs.append((name, got[session.output_names[0]], y_ref))
            rows += [_error_row(name, kind, x, got, ref, cfg.tolerance) for name, got, ref in outputs]
    for session in (encoder, decoder, *(s for _, s in forms.values())):
        session.close()
    return {"backend": "onnxruntime-cpu", "precision": "fp32", "tolerance": cfg.tolerance, "rows": rows,
            "passed": all(r["passed"] for r in rows), "export_config": to_dict(cfg)}


def format_parity_table(report: dict) -> str:
    lines = [f"parity {report['backend']} {report['precision']} vs PyTorch (tolerance {report['tolerance']:.0e})",
             f"{'model':22} {'input':11} {'shape':18} {'max abs':>10} {'mean abs':>10} {'range':>7} {'max/range':>10}  ok"]
    for r in report["rows"]:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['model']:22} {r['input']:11} {shape:18} {r['max_abs']:10.2e} {r['mean_abs']:10.2e} {r['range']:7.2f} {r['max_scaled']:10.2e}  "
                     f"{'yes' if r['passed'] else 'NO'}")
    return "\n".join(lines)
