"""FP16 ONNX: weights and activations in float16, inputs and outputs kept float32.

TensorRT builds it as a strongly typed network, so the precision is in the file, not in builder flags;
the runtime feeds the same float32 arrays as for the fp32 model.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx

from edgeae.config import atomic_write_bytes


def set_metadata(model: onnx.ModelProto, **values: str) -> None:
    """Overwrite or add `edgeae.<key>` metadata entries."""
    keep = {p.key: p.value for p in model.metadata_props}
    keep.update({f"edgeae.{k}": v for k, v in values.items()})
    del model.metadata_props[:]
    for key, value in keep.items():
        model.metadata_props.add(key=key, value=value)


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write an fp16 copy of the fp32 ONNX `src` (keep_io_types=True) to `dst`."""
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about values it clamps to fp16's range; none here
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    set_metadata(half, precision="fp16")
    onnx.checker.check_model(half, full_check=True)
    atomic_write_bytes(dst, half.SerializeToString())
    return Path(dst)
