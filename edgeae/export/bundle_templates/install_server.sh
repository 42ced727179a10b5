#!/usr/bin/env bash
# Install the edgeae bundle @NAME_Q@ (target server: Triton Inference Server through nvidia-pytriton) on this machine.
# usage: ./install.sh [--prefix DIR] [--python PYTHON] [--serve-args ARGS] [--enable-service]
#   --prefix      where the venv, model and unit go (default $EDGEAE_PREFIX or ~/.local/share/edgeae/NAME)
#   --python      a shared-build Python 3.8-3.13 (default python3.11, else python3): Triton's backend stub loads its libpython
#   --serve-args  options for 'edgeae serve' (default: SERVE_ARGS below; --address 0.0.0.0 serves the network)
#   --enable-service  copy the systemd unit to /etc/systemd/system and start it (needs root)
# Steps: verify MANIFEST.json → venv → edgeae wheel + nvidia-pytriton → can this Python host Triton? → model → unit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Every value `edgeae deploy` wrote here is one line (it refuses control characters) and shell-quoted.
NAME=@NAME_Q@
SERVE_ARGS=@SERVE_ARGS_Q@
PREFIX="${EDGEAE_PREFIX:-$HOME/.local/share/edgeae/$NAME}"
PYTHON="${PYTHON:-$(command -v python3.11 || echo python3)}"
ENABLE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --serve-args) SERVE_ARGS="$2"; shift 2 ;;
    --enable-service) ENABLE=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

quote() { printf "'%s'" "${1//\'/\'\"\'\"\'}"; }
case "$SERVE_ARGS" in
  *[[:cntrl:]]*) echo "install.sh: --serve-args has a control character (newline, tab, …): pass it on one line" >&2; exit 2 ;;
esac
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
SERVICE_USER="$(id -un)"
for value in "$PREFIX" "$SERVICE_USER"; do
  case "$value" in
    ''|*[!A-Za-z0-9._/+@-]*) echo "install.sh: $(quote "$value") goes into the systemd unit: use only letters, digits and . _ - + @ / (pass another --prefix)" >&2; exit 2 ;;
  esac
done

if ! "$PYTHON" "$HERE/verify.py" verify "$HERE"; then
  echo "install.sh: refusing to install $HERE: get the bundle again" >&2
  exit 3
fi
"$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' \
  || { echo "install.sh: the server needs Python 3.10-3.13 (Triton's backend stubs); pass --python /path/to/python3.11" >&2; exit 2; }

VENV="$PREFIX/venv"
mkdir -p "$PREFIX"
"$PYTHON" -m venv "$VENV" \
  || { echo "install.sh: cannot create a venv with $PYTHON (Debian/Ubuntu: sudo apt install python3-venv)" >&2; exit 2; }
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q --find-links "$HERE/wheels")
# One resolution for everything: nvidia-pytriton pins numpy < 2, the others follow it.
SPECS=()
while IFS='|' read -r spec module; do
  [ -n "$spec" ] && SPECS+=("$spec")
done <<'REQUIREMENTS'
@REQUIREMENTS@
REQUIREMENTS
"${PIP[@]}" "${SPECS[@]}"
@OPTIONAL_RUNTIMES@
"${PIP[@]}" --no-deps --force-reinstall "$HERE"/wheels/edgeae-*.whl

# Triton's Python backend stub must load this Python's own libpython: say so now, not at the first start.
"$VENV/bin/python" -m edgeae.serve.host "$VENV/bin/python" \
  || { echo "install.sh: $PYTHON cannot host Triton's Python backend (above); pass --python with a shared build, e.g. Debian's /usr/bin/python3.11" >&2; exit 2; }

rm -rf "$PREFIX/model.new"
cp -R "$HERE/model" "$PREFIX/model.new"
rm -rf "$PREFIX/model"
mv "$PREFIX/model.new" "$PREFIX/model"
cp "$HERE/MANIFEST.json" "$PREFIX/MANIFEST.json"
"$VENV/bin/edgeae" doctor --no-cameras || true
"$VENV/bin/python" -m edgeae.runtime.tuning "$PREFIX/model"

UNIT="$NAME.service"
printf 'EDGEAE_SERVE_ARGS=%s\n' "$(quote "$SERVE_ARGS")" > "$PREFIX/edgeae.env"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@USER@|$SERVICE_USER|g" \
  "$HERE/edgeae.service.in" > "$PREFIX/$UNIT"
if [ "$ENABLE" = 1 ]; then
  cp "$PREFIX/$UNIT" "/etc/systemd/system/$UNIT"
  systemctl daemon-reload
  systemctl enable --now "$UNIT"
fi
echo "installed $NAME in $PREFIX"
echo "  run it:      $VENV/bin/edgeae serve $PREFIX/model --serve-python $VENV/bin/python $SERVE_ARGS"
[ "$ENABLE" = 1 ] || echo "  as a service: sudo cp $PREFIX/$UNIT /etc/systemd/system/ && sudo systemctl enable --now $UNIT"
