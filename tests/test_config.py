"""Configuration files: atomic writes."""

import os
import stat

import pytest

from edgeae.config import atomic_write_bytes, atomic_write_json


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_get_the_mode_the_umask_gives_new_files(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_bytes(tmp_path / "report.bin", b"data")
    atomic_write_json(tmp_path / "run" / "config.json", {"a": 1})
    assert stat.S_IMODE((tmp_path / "report.bin").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "run" / "config.json").stat().st_mode) == mode


def test_atomic_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    atomic_write_bytes(tmp_path / "a.json", b"old")
    atomic_write_bytes(tmp_path / "a.json", b"new")
    assert (tmp_path / "a.json").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
