"""OpenVINO against ONNX Runtime on a run's own ONNX files: the "openvino" section of export_report.json.

Every precision whose files are there (fp32, fp16, int8) runs on OpenVINO and is compared, part by part,
with ONNX Runtime CPU fp32 under the bench's tolerances (runtime/benchmark.py owns them). int8 is also
compared with ONNX Runtime running the same Q/DQ file: that separates OpenVINO's arithmetic from the
quantisation's own loss, which 'edgeae build --precision int8' already bounds. Torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgeae.config import atomic_write_json
from edgeae.errors import EdgeAEError
from edgeae.runtime.autoencoder import Autoencoder
from edgeae.runtime.benchmark import TOLERANCES, compare_parts, error_stats, random_input
from edgeae.runtime.run_files import PRECISIONS

# OpenVINO int8 against ONNX Runtime int8 on the same Q/DQ file. Both requantise between layers, and a value
# on a rounding boundary lands one int8 step apart: 57 dB on vtest.avi frames, so 45 dB leaves a wide margin.
SAME_QDQ_FILE_PSNR_MIN = 45.0
RANDOM_SHAPES = ((1, 3, 32, 32), (2, 3, 64, 96))


def parity_inputs(real_frames: str, downsample: int) -> list[tuple[str, np.ndarray]]:
    """Random batches, plus the first frame of `real_frames` padded as the runtime pads it."""
    inputs = [("random", random_input(shape, seed=i)) for i, shape in enumerate(RANDOM_SHAPES)]
    if real_frames:
        from edgeae.runtime.preprocess import frames_to_batch
        from edgeae.runtime.sources import iter_frames

        frame = next(iter_frames(real_frames, limit=1), None)
        if frame is None:
            raise EdgeAEError(f"no frame could be read from {real_frames}; pass a video, image or image folder")
        inputs.append(("real frame", frames_to_batch([frame], downsample)[0]))
    return inputs


def _export_real_frames(run_dir: Path) -> str:
    path = run_dir / "export_config.json"
    return json.loads(path.read_text()).get("real_frames", "") if path.is_file() else ""


def _openvino_version() -> str:
    try:
        import openvino
    except ImportError:
        return "not installed"
    return openvino.get_version()


def _rows(ae: Autoencoder, reference: Autoencoder, inputs, precision: str, reference_label: str) -> list[dict]:
    rows = []
    for kind, x in inputs:
        ref_latent = reference.encode_batch(x)
        for row in compare_parts(ae, x, ref_latent, reference.decode_batch(ref_latent), precision):
            rows.append({"precision": precision, "reference": reference_label, "input": kind, "shape": list(x.shape), **row})
    return rows


def _same_file_rows(ae: Autoencoder, ort: Autoencoder, inputs) -> list[dict]:
    rows = []
    for kind, x in inputs:
        stats = error_stats(ae.decode_batch(ae.encode_batch(x)), ort.decode_batch(ort.encode_batch(x)))
        rows.append({"precision": "int8", "reference": "onnxruntime-cpu int8", "input": kind, "shape": list(x.shape),
                     "part": "full", **stats, "passed": bool(stats["psnr_db"] >= SAME_QDQ_FILE_PSNR_MIN)})
    return rows


def openvino_parity(run_dir: str | os.PathLike, real_frames: str = "", device: str = "CPU", threads: int = 0) -> dict:
    """OpenVINO fp32/fp16/int8 against ONNX Runtime CPU; precisions that cannot load are listed with why.

    real_frames: a video/image/folder whose first frame is also compared ("" = export's --real-frames, if any).
    """
    run_dir = Path(run_dir)
    ort = {"providers": ["CPUExecutionProvider"], "threads": threads}
    rows, skipped, computed_in = [], {}, {}
    with Autoencoder.load(run_dir, backend="onnxruntime", **ort) as reference:
        inputs = parity_inputs(real_frames or _export_real_frames(run_dir), reference.info.downsample)
        for precision in PRECISIONS:
            try:
                ae = Autoencoder.load(run_dir, backend="openvino", precision=precision, device=device, threads=threads)
            except EdgeAEError as e:
                skipped[precision] = str(e)
                continue
            with ae:
                computed_in[precision] = ae.encoder.inference_precision
                rows += _rows(ae, reference, inputs, precision, "onnxruntime-cpu fp32")
                if precision == "int8":
                    with Autoencoder.load(run_dir, backend="onnxruntime", precision="int8", **ort) as ort_int8:
                        rows += _same_file_rows(ae, ort_int8, inputs)
    return {"backend": f"openvino {device}", "openvino_version": _openvino_version(), "inference_precision": computed_in,
            "tolerances": {**TOLERANCES, "int8 vs onnxruntime int8": {"psnr_db": SAME_QDQ_FILE_PSNR_MIN}},
            "rows": rows, "skipped": skipped, "passed": bool(rows) and all(r["passed"] for r in rows)}


def record_openvino_parity(run_dir: str | os.PathLike, **options) -> dict:
    """openvino_parity, saved as the "openvino" section of RUN/export_report.json; returns the section."""
    run_dir = Path(run_dir)
    path = run_dir / "export_report.json"
    if not path.is_file():
        raise EdgeAEError(f"{path} not found; run 'edgeae export {run_dir}' first")
    section = openvino_parity(run_dir, **options)
    report = json.loads(path.read_text())
    report["openvino"] = section
    atomic_write_json(path, report)
    return section


def format_openvino_parity(section: dict) -> str:
    lines = [f"parity {section['backend']} (OpenVINO {section['openvino_version']}) vs ONNX Runtime CPU",
             f"{'precision':9} {'reference':21} {'part':8} {'input':11} {'shape':14} {'max/range':>10} {'PSNR dB':>8}  ok"]
    for r in section["rows"]:
        lines.append(f"{r['precision']:9} {r['reference']:21} {r['part']:8} {r['input']:11} {'x'.join(map(str, r['shape'])):14} "
                     f"{r['max_scaled']:10.2e} {r['psnr_db']:8.1f}  {'yes' if r['passed'] else 'NO'}")
    lines += [f"{p:9} skipped: {why}" for p, why in section["skipped"].items()]
    return "\n".join(lines)
