#!/usr/bin/env bash
# Set up a fresh machine: system libraries for Qt (and Xvfb for headless runs),
# then .venv with CPU PyTorch and napari-medseg with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth libgl1 libegl1 libfontconfig1 libdbus-1-3 libxcb-icccm4 libxcb-keysyms1
  libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0
  libxkbcommon-x11-0 libxcb-cursor0"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "installing system packages: $(echo $missing)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# CPU torch first: a plain 'torch' requirement would otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[testing]"
echo "napari-medseg is set up in .venv"
