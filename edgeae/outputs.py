"""Guards every verb puts around what it writes: never over one of its own inputs, never two writers at once.

`refuse_overwriting_inputs` runs before any output is opened; `OutputLock` is held for as long as a
verb writes a path (an exclusive `fcntl.flock` on a hidden lock file beside it), so a second process
writing the same video, events file or run folder is refused with one line instead of mixing its output in.
"""

from __future__ import annotations

import fcntl
import os
import signal
from contextlib import contextmanager
from pathlib import Path

from edgeae.errors import EdgeAEError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare what they resolve to
        return a.resolve() == b.resolve()


def refuse_overwriting_inputs(outputs: dict[str, str | os.PathLike], inputs: dict[str, str | os.PathLike]) -> None:
    """Raise EdgeAEError if any output (label → path) is, or resolves to, one of the inputs (label → path).

    Inputs that are not files or folders on disk (camera indices, URLs, pipelines) are ignored; an output
    inside an input folder is allowed (writing new frames next to old ones loses nothing).
    """
    for out_label, out in outputs.items():
        if not out:
            continue
        for in_label, src in inputs.items():
            if src and Path(src).exists() and _same_file(Path(out), Path(src)):
                raise EdgeAEError(f"{out_label} {out} is the {in_label}: writing it would destroy the input; "
                                  f"choose another output path")


class OutputLock:
    """An exclusive lock on `path` for one writer: `with OutputLock(out): ...`; a second writer gets EdgeAEError.

    The lock file `.NAME.lock` lies beside `path` (inside it, for a folder such as a run folder); it is
    left in place on release, since removing it would let a third writer lock a different inode.
    """

    def __init__(self, path: str | os.PathLike, what: str = "output", folder: bool = False):
        path = Path(path)
        self.folder = folder or path.is_dir()
        self.lock_file = path / ".edgeae.lock" if self.folder else path.parent / f".{path.name}.lock"
        self.path, self.what = path, what
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        """Take the lock; the output folder (or the file's parent) is made first, so every writer locks one file."""
        try:
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise EdgeAEError(f"cannot write {self.what} {self.path}: {e.strerror or e}; choose a writable path") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EdgeAEError(f"{self.what} {self.path} is being written by another edgeae process; "
                              f"wait for it to finish or choose another path") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM until the block ends, so finalising a file is not itself interrupted."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
