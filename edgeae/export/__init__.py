"""Export stage: ONNX export with parity checks, quantisation, TensorRT engine building (needs torch/onnx)."""
