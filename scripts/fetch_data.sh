#!/usr/bin/env bash
# Fetch OpenCV's sample footage and photos from Debian's opencv-doc package into $1 (default data/opencv),
# then verify it: vtest.avi must open with OpenCV at 768x576 with 795 frames.
set -euo pipefail
dest=${1:-data/opencv}
py=${PYTHON:-python3}
verify() {
  "$py" - "$dest" <<'PY'
import sys, cv2
from pathlib import Path
d = Path(sys.argv[1])
cap = cv2.VideoCapture(str(d / "vtest.avi"))
n, w, h = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
ok = cap.isOpened() and (n, w, h) == (795, 768, 576)
photos = len(list(d.glob("*.jpg")) + list(d.glob("*.png")))
print(f"{d}: vtest.avi {w}x{h} {n} frames, {photos} photos -> {'ok' if ok and photos >= 50 else 'INCOMPLETE'}")
sys.exit(0 if ok and photos >= 50 else 1)
PY
}
if [ -f "$dest/vtest.avi" ] && verify; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "downloading Debian package opencv-doc (about 96 MB)…"
if ! (cd "$work" && apt-get download opencv-doc >/dev/null 2>&1); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download opencv-doc)
  else
    echo "error: 'apt-get download opencv-doc' failed; run 'sudo apt-get update' once, then 'make data' again" >&2
    exit 1
  fi
fi
dpkg -x "$work"/opencv-doc_*.deb "$work/x"
mkdir -p "$dest.partial"
cp -r "$work"/x/usr/share/doc/opencv-doc/examples/data/. "$dest.partial/"
# Debian compresses some large text files; the footage and photos are stored as they are.
rm -rf "$dest" && mv "$dest.partial" "$dest"
verify
