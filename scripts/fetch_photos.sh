#!/usr/bin/env bash
# Real photos for training and judging the denoiser: Debian's mate-backgrounds, plasma-workspace-wallpapers and
# ukui-wallpapers (photos only, no digital art) plus the colour photos of opencv-doc (already in $2, from
# 'make data'). Each is downscaled with INTER_AREA to a long side of at most 1024 (which also hides JPEG
# artefacts) and written as PNG to $1/train/ or $1/heldout/.
# The split is fixed: the photo list below, sorted by output name, holds out every 4th photo (index % 4 == 3).
# Near-duplicates (stereo pairs, the same scene twice) are listed once, so none straddles the split.
set -euo pipefail
dest=${1:-data/photos}
opencv=${2:-data/opencv}
py=${PYTHON:-python3}
# output name <TAB> path inside the .deb trees (usr/share/...) or opencv:<file in $opencv>
read -r -d '' PHOTOS <<'LIST' || true
mate-aqua	usr/share/backgrounds/mate/nature/Aqua.jpg
mate-blinds	usr/share/backgrounds/mate/nature/Blinds.jpg
mate-dune	usr/share/backgrounds/mate/nature/Dune.jpg
mate-freshflower	usr/share/backgrounds/mate/nature/FreshFlower.jpg
mate-garden	usr/share/backgrounds/mate/nature/Garden.jpg
mate-greenmeadow	usr/share/backgrounds/mate/nature/GreenMeadow.jpg
mate-ladybird	usr/share/backgrounds/mate/nature/LadyBird.jpg
mate-raindrops	usr/share/backgrounds/mate/nature/RainDrops.jpg
mate-storm	usr/share/backgrounds/mate/nature/Storm.jpg
mate-twowings	usr/share/backgrounds/mate/nature/TwoWings.jpg
mate-wood	usr/share/backgrounds/mate/nature/Wood.jpg
mate-yellowflower	usr/share/backgrounds/mate/nature/YellowFlower.jpg
kde-bythewater	usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg
kde-coldripple	usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg
kde-colorfulcups	usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg
kde-darkesthour	usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg
kde-eveningglow	usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg
kde-fallenleaf	usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg
kde-grey	usr/share/wallpapers/Grey/contents/images/2560x1600.jpg
kde-kite	usr/share/wallpapers/Kite/contents/images/2560x1600.jpg
kde-milkyway	usr/share/wallpapers/MilkyWay/contents/images/5120x2880.png
kde-onestandsout	usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg
kde-path	usr/share/wallpapers/Path/contents/images/2560x1600.jpg
kde-summer1am	usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg
kde-volna	usr/share/wallpapers/Volna/contents/images/5120x2880.jpg
cv-aero1	opencv:aero1.jpg
cv-aero3	opencv:aero3.jpg
cv-aloe	opencv:aloeL.jpg
cv-apple	opencv:apple.jpg
cv-baboon	opencv:baboon.jpg
cv-board	opencv:board.jpg
cv-books	opencv:left.jpg
cv-building	opencv:building.jpg
cv-butterfly	opencv:butterfly.jpg
cv-chicky	opencv:chicky_512.png
cv-ela	opencv:ela_original.jpg
cv-fruits	opencv:fruits.jpg
cv-graf	opencv:graf1.png
cv-home	opencv:home.jpg
cv-leuven	opencv:leuvenA.jpg
cv-licenseplate	opencv:licenseplate_motion.jpg
cv-messi	opencv:messi5.jpg
cv-orange	opencv:orange.jpg
cv-rubberwhale	opencv:rubberwhale1.png
cv-smarties	opencv:smarties.png
cv-squirrel	opencv:squirrel_cls.jpg
cv-stuff	opencv:stuff.jpg
LIST
if [ ! -f "$opencv/baboon.jpg" ]; then
  echo "error: $opencv has no opencv-doc photos; run 'make data' first" >&2
  exit 1
fi
if [ -f "$dest/.complete" ]; then echo "$dest: complete"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
packages="mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers"
echo "downloading Debian packages $packages (about 160 MB)…"
if ! (cd "$work" && apt-get download $packages >/dev/null 2>&1); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download $packages)
  else
    echo "error: 'apt-get download $packages' failed; run 'sudo apt-get update' once, then 'make data-photos' again" >&2
    exit 1
  fi
fi
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
rm -rf "$dest.partial"
printf '%s\n' "$PHOTOS" >"$work/photos.tsv"
"$py" - "$work/x" "$opencv" "$dest.partial" "$work/photos.tsv" <<'PY'
import sys
from pathlib import Path

import cv2

root, opencv, out, listing = (Path(a) for a in sys.argv[1:5])
rows = sorted(line.split("\t") for line in listing.read_text().splitlines() if line.strip())
for index, (name, where) in enumerate(rows):
    src = opencv / where[len("opencv:"):] if where.startswith("opencv:") else root / where
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"error: cannot read {src}")
    scale = 1024 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    split = "heldout" if index % 4 == 3 else "train"
    (out / split).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / split / f"{name}.png"), image)
counts = {s: len(list((out / s).glob("*.png"))) for s in ("train", "heldout")}
print(f"{out.parent / out.name.removesuffix('.partial')}: {counts['train']} train, {counts['heldout']} held-out photos")
PY
touch "$dest.partial/.complete"
rm -rf "$dest" && mv "$dest.partial" "$dest"
