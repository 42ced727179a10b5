"""The runtime must import and run on a device without PyTorch (or onnx): see conftest's run_without_torch."""

def test_runtime_imports_where_torch_raises(run_without_torch):
    result = run_without_torch("""
        import edgeae.runtime, edgeae.runtime.autoencoder, edgeae.runtime.sources, edgeae.cli
        import edgeae.runtime.benchmark, edgeae.runtime.backends.opencv_dnn
        import edgeae.runtime.sinks, edgeae.runtime.pipeline
        import edgeae.runtime.tasks.anomaly, edgeae.runtime.tasks.denoise
        import edgeae.runtime.tensorrt_flavour, edgeae.runtime.backends.tensorrt
        assert "torch" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr


def test_compression_and_augmentation_import_where_torch_raises(run_without_torch):
    result = run_without_torch("""
        import edgeae.runtime.bitstream, edgeae.runtime.latent_codec, edgeae.runtime.quality
        import edgeae.runtime.tasks.compress, edgeae.runtime.tasks.augment
        assert not {"torch", "edgeae.training", "edgeae.export"} & set(sys.modules)
    """)
    assert result.returncode == 0, result.stderr


def test_runtime_reconstructs_without_torch(trained_run, run_without_torch):
    result = run_without_torch(f"""
        import numpy as np
        from edgeae.runtime import Autoencoder
        with Autoencoder.load({str(trained_run)!r}) as ae:
            out = ae.reconstruct([np.zeros((48, 64, 3), np.uint8)])
        assert out[0].shape == (48, 64, 3) and "torch" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr


def test_device_bench_runs_without_torch(trained_run, run_without_torch):
    result = run_without_torch(f"""
        from edgeae.cli import main
        assert main(["bench", {str(trained_run)!r}, "--quick"]) == 0
        assert "torch" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr
    assert "opencv-dnn fp32" in result.stdout and "tensorrt fp16" in result.stdout
def test_device_side_tools_import_where_torch_raises(run_without_torch):
    result = run_without_torch("""
        import edgeae.doctor, edgeae.export.bundle, edgeae.export.bundle_verify
        edgeae.doctor.report(probe_cameras=False)
        assert "torch" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr
