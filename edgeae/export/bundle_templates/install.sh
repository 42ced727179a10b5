#!/usr/bin/env bash
# Install the edgeae bundle @NAME_Q@ (target @TARGET_Q@) on this device.
# usage: ./install.sh [--prefix DIR] [--source CAMERA] [--python PYTHON] [--enable-service]
#   --prefix   where the venv, model and unit go (default $EDGEAE_PREFIX or ~/.local/share/edgeae/NAME)
#   --source   what the service reads: camera index, video, URL or GStreamer pipeline (default: SOURCE below)
#   --enable-service  copy the systemd unit to /etc/systemd/system and start it (needs root)
# Steps: verify MANIFEST.json → venv → edgeae wheel → missing dependencies → model → engines → unit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Every value `edgeae deploy` wrote here is one line (it refuses control characters) and shell-quoted.
NAME=@NAME_Q@
TASK=@TASK_Q@
SOURCE=@SOURCE_Q@
PREFIX="${EDGEAE_PREFIX:-$HOME/.local/share/edgeae/$NAME}"
PYTHON="${PYTHON:-python3}"
ENABLE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --enable-service) ENABLE=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# shlex.quote's form: the shell and systemd's EnvironmentFile both read it back as one word.
quote() { printf "'%s'" "${1//\'/\'\"\'\"\'}"; }
# SOURCE goes into edgeae.env; PREFIX and the user into the unit, whose paths cannot be quoted safely.
case "$SOURCE" in
  *[[:cntrl:]]*) echo "install.sh: --source $(quote "$SOURCE") has a control character (newline, tab, …): pass it on one line" >&2; exit 2 ;;
esac
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
SERVICE_USER="$(id -un)"
for value in "$PREFIX" "$SERVICE_USER"; do
  case "$value" in
    ''|*[!A-Za-z0-9._/+@-]*) echo "install.sh: $(quote "$value") goes into the systemd unit: use only letters, digits and . _ - + @ / (pass another --prefix)" >&2; exit 2 ;;
  esac
done

# Nothing is installed until every file matches MANIFEST.json.
if ! "$PYTHON" "$HERE/verify.py" verify "$HERE"; then
  echo "install.sh: refusing to install $HERE: get the bundle again" >&2
  exit 3
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "install.sh: edgeae needs Python >= 3.10; pass --python /path/to/python3.10+" >&2; exit 2; }

# On jetson/gpu the venv sees the system's packages: JetPack's TensorRT and its OpenCV with GStreamer.
VENV="$PREFIX/venv"
mkdir -p "$PREFIX"
"$PYTHON" -m venv @VENV_FLAGS@ "$VENV" \
  || { echo "install.sh: cannot create a venv with $PYTHON (Debian/Ubuntu/JetPack: sudo apt install python3-venv)" >&2; exit 2; }
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q --find-links "$HERE/wheels")
# A dependency the device can already import is kept: pip would shadow JetPack's cv2 with its own.
MISSING=()
while IFS='|' read -r spec module; do
  [ -n "$spec" ] || continue
  if "$VENV/bin/python" -c "import $module" 2>/dev/null; then
    echo "install.sh: using this device's $module for $spec"
  else
    MISSING+=("$spec")
  fi
done <<'REQUIREMENTS'
@REQUIREMENTS@
REQUIREMENTS
[ ${#MISSING[@]} -eq 0 ] || "${PIP[@]}" "${MISSING[@]}"
@OPTIONAL_RUNTIMES@
"${PIP[@]}" --no-deps --force-reinstall "$HERE"/wheels/edgeae-*.whl

rm -rf "$PREFIX/model.new"
cp -R "$HERE/model" "$PREFIX/model.new"
rm -rf "$PREFIX/model"
mv "$PREFIX/model.new" "$PREFIX/model"
cp "$HERE/MANIFEST.json" "$PREFIX/MANIFEST.json"

# First run: TensorRT engines are built here, for this GPU and TensorRT version, where TensorRT is installed.
# A build that fails stops the install (the unit's ExecStartPre runs the same command before each start).
"$VENV/bin/edgeae" doctor --no-cameras || true
"$VENV/bin/python" -m edgeae.runtime.engine_build "$PREFIX/model"
# Then time the equivalent CPU forms on this device and keep the fastest (RUN/tuning.json, keyed to this CPU).
"$VENV/bin/python" -m edgeae.runtime.tuning "$PREFIX/model"

UNIT="$NAME.service"
printf 'EDGEAE_SOURCE=%s\nEDGEAE_TASK=%s\n' "$(quote "$SOURCE")" "$(quote "$TASK")" > "$PREFIX/edgeae.env"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@USER@|$SERVICE_USER|g" \
  "$HERE/edgeae.service.in" > "$PREFIX/$UNIT"
if [ "$ENABLE" = 1 ]; then
  cp "$PREFIX/$UNIT" "/etc/systemd/system/$UNIT"
  systemctl daemon-reload
  systemctl enable --now "$UNIT"
fi
echo "installed $NAME in $PREFIX"
echo "  run it:      $VENV/bin/edgeae run $PREFIX/model --task $(quote "$TASK") --source $(quote "$SOURCE") --backend auto"
[ "$ENABLE" = 1 ] || echo "  as a service: sudo cp $PREFIX/$UNIT /etc/systemd/system/ && sudo systemctl enable --now $UNIT"
