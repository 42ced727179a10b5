"""Frozen dataclasses as configuration: strict loading from dicts/JSON, atomic saving beside artefacts."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import typing
from pathlib import Path
from typing import Any, TypeVar

from edgeae.errors import EdgeAEError

T = TypeVar("T")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp_beside(path: Path) -> tuple[int, Path]:
    """A new hidden file in `path`'s folder, open for writing, with the mode any new file gets (0666 less
    the umask, as open() gives). Not mkstemp: its files are 0600, and renamed into place they would
    leave run folders and reports readable by their owner alone."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:  # a 64-bit random name taken: try another, as mkstemp does
            continue


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def to_dict(cfg: Any) -> dict:
    """Dataclass → plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types by name."""
    if not isinstance(data, dict):
        raise EdgeAEError(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise EdgeAEError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except EdgeAEError:
                continue
        raise EdgeAEError(f"{where}: {value!r} does not match {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise EdgeAEError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, where) for v in value)
    if origin is typing.Literal:
        if value not in args:
            raise EdgeAEError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise EdgeAEError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    atomic_write_json(path, to_dict(cfg))


def load_config(cls: type[T], path: str | os.PathLike) -> T:
    path = Path(path)
    if not path.is_file():
        raise EdgeAEError(f"{path} not found: is this a run folder written by 'edgeae train'?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EdgeAEError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); restore or delete it") from None
    return from_dict(cls, data, where=path.name)
