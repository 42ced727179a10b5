import json

import numpy as np
import onnx
import pytest
import torch

from edgeae.errors import EdgeAEError
from edgeae.export.onnx_export import ExportConfig, export_onnx
from edgeae.training.train import load_model


def test_encoder_and_decoder_are_separate_files_with_dynamic_batch_height_width(trained_run):
    for name, inp, out in (("encoder", "image", "latent"), ("decoder", "latent", "image")):
        model = onnx.load(trained_run / f"{name}.onnx")
        onnx.checker.check_model(model, full_check=True)
        assert [i.name for i in model.graph.input] == [inp] and [o.name for o in model.graph.output] == [out]
        dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims[0] == "batch" and dims[2] and dims[3]


def test_metadata_describes_the_model_for_the_runtime(trained_run):
    meta = {p.key: p.value for p in onnx.load(trained_run / "encoder.onnx").metadata_props}
    assert meta["edgeae.role"] == "encoder"
    assert json.loads(meta["edgeae.architecture"])["widths"] == [12, 24, 48, 96]
    assert meta["edgeae.latent_channels"] == "96" and meta["edgeae.downsample"] == "16"
    assert len(meta["edgeae.checkpoint_sha256"]) == 64 and "edgeae.version" in meta and meta["edgeae.normalisation"]


def test_export_report_shows_fp32_parity_within_1e_5(trained_run):
    report = json.loads((trained_run / "export_report.json").read_text())
    assert report["passed"] and report["tolerance"] == 1e-5
    assert {r["model"] for r in report["rows"]} == {"encoder", "decoder", "full", "decoder.conv_transpose",
                                                    "decoder.phase", "fused.depth_to_space", "fused.conv_transpose",
                                                    "fused.phase"}
    assert all(r["max_scaled"] <= 1e-5 for r in report["rows"])


def test_export_writes_every_form_the_tuner_may_pick(trained_run):
    checkpoint = {p.key: p.value for p in onnx.load(trained_run / "encoder.onnx").metadata_props}["edgeae.checkpoint_sha256"]
    ops = {n.op_type for n in onnx.load(trained_run / "decoder.conv_transpose.onnx").graph.node}
    assert "ConvTranspose" in ops and "DepthToSpace" not in ops
    for form, op in (("depth_to_space", "DepthToSpace"), ("conv_transpose", "ConvTranspose"), ("phase", "Slice")):
        model = onnx.load(trained_run / f"autoencoder.{form}.onnx")
        onnx.checker.check_model(model, full_check=True)
        assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["reconstruction"]
        for value in (model.graph.input[0], model.graph.output[0]):
            assert [d.dim_param for d in value.type.tensor_type.shape.dim] == ["batch", "", "height", "width"]
        meta = {p.key: p.value for p in model.metadata_props}
        assert (meta["edgeae.role"], meta["edgeae.decoder_form"], meta["edgeae.checkpoint_sha256"]) == ("autoencoder", form, checkpoint)
        assert op in {n.op_type for n in model.graph.node}


def test_export_parity_on_real_frames(trained_run, footage, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    report = export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),), real_frames=str(footage / "vtest.avi")), progress=False)
    real = [r for r in report["rows"] if r["input"].startswith("real")]
    assert real and all(r["passed"] for r in real)
    assert any(r["shape"] == [1, 3, 576, 768] for r in real)


def test_export_fails_loudly_when_parity_fails(trained_run, tmp_path, monkeypatch):
    import shutil

    import edgeae.export.onnx_export as mod

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    real_check = mod.check_parity

    def perturbed(model, run_dir, cfg):
        with torch.no_grad():
            model.decoder[0].bias += 1e-2  # PyTorch now disagrees with the exported file
        return real_check(model, run_dir, cfg)

    monkeypatch.setattr(mod, "check_parity", perturbed)
    with pytest.raises(EdgeAEError, match="parity failed"):
        export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),)), progress=False)
    assert not json.loads((run / "export_report.json").read_text())["passed"]


def test_parity_on_real_frames_smaller_than_the_crop_offsets(trained_run, synthetic_video, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # synthetic_video frames are 64x96
    report = export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),), real_frames=str(synthetic_video)), progress=False)
    assert {r["input"] for r in report["rows"]} >= {"real frame", "real crops"} and report["passed"]


def test_decoder_is_exported_as_conv_plus_depth_to_space_by_default(trained_run):
    decoder = onnx.load(trained_run / "decoder.onnx")
    ops = {n.op_type for n in decoder.graph.node}
    assert "DepthToSpace" in ops and "ConvTranspose" not in ops
    assert {p.key: p.value for p in decoder.metadata_props}["edgeae.decoder_form"] == "depth_to_space"


def test_conv_transpose_decoder_form_is_still_available(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    report = export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),), decoder_form="conv_transpose"), progress=False)
    assert report["passed"] and "ConvTranspose" in {n.op_type for n in onnx.load(run / "decoder.onnx").graph.node}
    # decoder.onnx is now the ConvTranspose form: the other form file is the rewrite, the previous one is gone
    assert (run / "decoder.depth_to_space.onnx").is_file() and not (run / "decoder.conv_transpose.onnx").exists()
    assert "decoder.depth_to_space" in {r["model"] for r in report["rows"]}


def _deconv_decoder(activation: torch.nn.Module) -> onnx.ModelProto:
    """A two-layer ConvTranspose(k=4, s=2, p=1) decoder exported to ONNX, as export_files exports one."""
    from pathlib import Path
    import tempfile

    from edgeae.export.onnx_export import _export_one

    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 6, 4, 2, 1), torch.nn.ReLU(),
                                  torch.nn.ConvTranspose2d(6, 3, 4, 2, 1), activation).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decoder.onnx"
        _export_one(decoder, torch.rand(2, 8, 2, 3), path, ("latent", "image"), ("height", "width"),
                    {"edgeae.decoder_form": "conv_transpose"}, 18)
        return decoder, onnx.load(str(path))


@pytest.mark.parametrize("activation", [torch.nn.Sigmoid(), torch.nn.Identity()])
def test_phase_form_equals_the_deconvolution_at_odd_sizes(activation):
    import onnxruntime as ort

    from edgeae.export.onnx_export import phase_onnx

    decoder, model = _deconv_decoder(activation)
    phase = phase_onnx(model)
    ops = [n.op_type for n in phase.graph.node]
    assert "ConvTranspose" not in ops and ops.count("Conv") == 2 and ops.count("Slice") == 2
    # The activations run on the Conv's output, before the shuffle, where runtimes fuse them into the Conv.
    assert all(ops[ops.index("Conv", i) + 1] in ("Relu", "Sigmoid", "DepthToSpace") for i in range(len(ops)) if ops[i] == "Conv")
    assert {p.key: p.value for p in phase.metadata_props}["edgeae.decoder_form"] == "phase"
    session = ort.InferenceSession(phase.SerializeToString(), providers=["CPUExecutionProvider"])
    for shape in ((1, 8, 1, 1), (3, 8, 5, 7), (2, 8, 9, 4)):
        z = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            ref = decoder(torch.from_numpy(z)).numpy()
        got = session.run(None, {"latent": z})[0]
        assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-5


def test_phase_form_refuses_a_deconvolution_it_cannot_rewrite():
    from edgeae.export.onnx_export import phase_onnx

    _, model = _deconv_decoder(torch.nn.Identity())
    for attr in model.graph.node[0].attribute:
        if attr.name == "pads":
            attr.ints[:] = [0, 0, 0, 0]
    with pytest.raises(EdgeAEError, match="cannot rewrite .*--decoder-form conv_transpose"):
        phase_onnx(model)


@pytest.mark.parametrize("kernel, pad, output_padding", [(4, 1, 0), (5, 2, 1), (3, 1, 1), (2, 0, 0), (6, 2, 0)])
def test_subpixel_kernel_equals_every_stride_2_deconvolution_that_doubles_the_size(kernel, pad, output_padding):
    import torch.nn.functional as F

    from edgeae.export.onnx_export import subpixel_kernel

    torch.manual_seed(kernel)
    deconv = torch.nn.ConvTranspose2d(5, 4, kernel, 2, pad, output_padding=output_padding)
    weight, bias, pads = subpixel_kernel(deconv.weight.detach().numpy(), deconv.bias.detach().numpy(), kernel, pad)
    x = torch.randn(2, 5, 7, 6)
    with torch.no_grad():
        phases = F.conv2d(F.pad(x, (pads[1], pads[3], pads[0], pads[2])), torch.from_numpy(weight), torch.from_numpy(bias))
        assert (torch.nn.PixelShuffle(2)(phases) - deconv(x)).abs().max() <= 1e-5


def test_decoder_forms_chooses_what_the_tuner_gets_and_unknown_forms_are_refused(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    export_onnx(run, ExportConfig(parity_shapes=((1, 32, 32),), decoder_forms=("conv_transpose",)), progress=False)
    assert sorted(p.name for p in run.glob("*.onnx") if "fp16" not in p.name and "int8" not in p.name) == [
        "autoencoder.conv_transpose.onnx", "autoencoder.depth_to_space.onnx", "decoder.conv_transpose.onnx",
        "decoder.onnx", "encoder.onnx"]
    with pytest.raises(EdgeAEError, match="decoder form 'winograd' is not one of"):
        export_onnx(run, ExportConfig(decoder_forms=("winograd",)), progress=False)
