"""`edgeae doctor`: probes that never raise, and what they mean for backends and precisions."""

from edgeae import doctor

BUILD_INFO = """
  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
      avcodec:                   YES (58.54.100)
    GStreamer:                   YES (1.16.3)
    v4l/v4l2:                    YES (linux/videodev2.h)
"""


def test_opencv_video_io_is_read_from_build_information():
    found = doctor.opencv_video_io(BUILD_INFO)
    assert found == {"GStreamer": "YES (1.16.3)", "FFMPEG": "YES", "v4l/v4l2": "YES (linux/videodev2.h)"}


def test_missing_video_io_entries_read_as_no():
    assert doctor.opencv_video_io("General configuration\n")["GStreamer"] == "NO"


def test_onnxruntime_cpu_always_runs():
    lines = doctor.what_will_run(["CPUExecutionProvider"], {}, [])
    assert lines[0].startswith("onnxruntime   CPU") and any("not installed" in line for line in lines)


def test_tensorrt_without_gpu_builds_but_does_not_run():
    lines = doctor.what_will_run(["CPUExecutionProvider"], {"tensorrt-rtx": "1.7.1"}, [])
    assert any("can be built" in line and "not run" in line for line in lines)


def test_tensorrt_rtx_on_a_datacenter_gpu_is_reported_as_not_running():
    h100 = [{"name": "NVIDIA H100", "compute_cap": "9.0", "driver": "580"}]
    line = doctor.what_will_run([], {"tensorrt-rtx": "1.7.1"}, h100)[-1]
    assert line.startswith("tensorrt      no") and "9.0" in line


def test_jetson_with_tensorrt_builds_engines_on_first_run():
    orin = [{"name": "NVIDIA Jetson AGX Orin", "compute_cap": "8.7", "driver": "JetPack"}]
    line = doctor.what_will_run(["CUDAExecutionProvider", "CPUExecutionProvider"], {"tensorrt": "10.3.0"}, orin)[-1]
    assert "yes (tensorrt)" in line and "int8" in line and "first run" in line


def test_report_ends_with_what_will_run_here():
    text = doctor.report(probe_cameras=False)
    assert "opencv" in text and "GStreamer" in text and "what will run here:" in text


def test_report_names_the_cpu_and_its_isa_flags():
    from edgeae.runtime.tuning import cpu_info

    cpu_line = next(line for line in doctor.report(probe_cameras=False).splitlines() if line.startswith("cpu "))
    assert cpu_info().model in cpu_line and "usable cores" in cpu_line
    assert ("VNNI" in cpu_line or "AMX" in cpu_line or "dot-product" in cpu_line)


def test_report_with_a_run_says_which_form_runs_and_whether_it_was_tuned(trained_run):
    text = doctor.report(probe_cameras=False, run=str(trained_run))
    assert f"{trained_run} runs as: onnxruntime fp32, encoder + decoder sessions" in text and "untuned" in text


def test_report_for_a_run_that_does_not_load_says_why(tmp_path):
    assert "cannot load" in doctor.report(probe_cameras=False, run=str(tmp_path / "missing"))
