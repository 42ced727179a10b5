"""Check and unpack an edgeae deployment bundle using nothing but the Python standard library.

This file is copied into every bundle as `verify.py`: the device runs it with its system `python3`
before anything is installed, so it must not import edgeae, numpy or anything outside the stdlib.

  python3 verify.py verify BUNDLE_DIR          every file matches MANIFEST.json, nothing unlisted
  python3 verify.py extract ARCHIVE DEST_DIR   refuse absolute paths, '..', links and devices, then unpack
  python3 verify.py manifest BUNDLE_DIR        write MANIFEST.json for the files in BUNDLE_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path, PurePosixPath

MANIFEST = "MANIFEST.json"
FORMAT = "edgeae-bundle/1"


class BundleError(Exception):
    """The bundle is damaged, tampered with or unsafe; the message says which file and why."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of every file under `root` except MANIFEST.json, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MANIFEST:
                found.append(rel)
    return sorted(found)


def write_manifest(root: Path, info: dict | None = None) -> dict:
    """Hash every file under `root` into root/MANIFEST.json; `info` adds descriptive keys."""
    root = Path(root)
    files = {rel: {"sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size} for rel in list_files(root)}
    manifest = {"format": FORMAT, **(info or {}), "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_member_name(name: str) -> None:
    """Refuse names that would land outside the destination folder."""
    path = PurePosixPath(name)
    if not path.parts or path.is_absolute() or ":" in path.parts[0]:
        raise BundleError(f"refusing {name!r}: absolute or empty path in the bundle")
    if ".." in path.parts or "\\" in name:
        raise BundleError(f"refusing {name!r}: '..' or backslash in a bundle path")


def verify(root: Path) -> dict:
    """Raise BundleError unless every file under `root` is listed in MANIFEST.json with its sha256."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{root / MANIFEST} is missing or unreadable ({e})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST}: format {manifest.get('format')!r} is not {FORMAT}")
    for rel, entry in files.items():
        check_member_name(rel)
        path = root / rel
        if path.is_symlink() or not path.is_file():
            raise BundleError(f"{rel} is listed in the manifest but missing (or not a plain file)")
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise BundleError(f"{rel} does not match its sha256 in the manifest: the bundle was changed")
    extra = sorted(set(list_files(root)) - set(files))
    if extra:
        raise BundleError(f"{extra[0]} is not in the manifest ({len(extra)} unlisted file(s)): the bundle was changed")
    return manifest


def check_archive(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member must be a plain file or folder with a safe relative name."""
    members = tar.getmembers()
    for m in members:
        check_member_name(m.name)
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"refusing {m.name!r}: links and device files are not allowed in a bundle")
    return members


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a bundle archive into `dest` after checking every member; returns the bundle folder."""
    dest = Path(dest)
    with tarfile.open(archive, "r:gz") as tar:
        members = check_archive(tar)
        tops = {PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts}
        if len(tops) != 1:
            raise BundleError(f"{archive}: expected one top-level folder, found {len(tops)}")
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):  # 3.12+, and 3.10.12+/3.11.4+ backports
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)
    return dest / tops.pop()


def main(argv: list[str]) -> int:
    usage = "usage: verify.py verify BUNDLE_DIR | extract ARCHIVE DEST_DIR | manifest BUNDLE_DIR"
    try:
        if len(argv) == 2 and argv[0] == "verify":
            manifest = verify(Path(argv[1]))
            print(f"bundle ok: {len(manifest['files'])} files match {MANIFEST}")
        elif len(argv) == 3 and argv[0] == "extract":
            print(extract(Path(argv[1]), Path(argv[2])))
        elif len(argv) == 2 and argv[0] == "manifest":
            write_manifest(Path(argv[1]))
        else:
            print(usage, file=sys.stderr)
            return 2
    except (BundleError, tarfile.TarError, OSError) as e:
        print(f"edgeae bundle refused: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
