#!/usr/bin/env bash
# Set up napari-alma on a fresh Debian or Ubuntu machine, from the repository root:
# the system libraries that Qt needs under Xvfb, then a virtual environment in .venv
# with the package (editable) and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  xvfb xauth libgl1 libegl1 libfontconfig1 libdbus-1-3 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
)

install_system_packages() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get not found: install Xvfb and the libxcb libraries for Qt by hand." >&2
    return
  fi
  if dpkg -s "${SYSTEM_PACKAGES[@]}" >/dev/null 2>&1; then
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${SYSTEM_PACKAGES[@]}" >/dev/null
}

install_python_packages() {
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  # NOTE: torch is pinned here, not in setup.cfg: 2.13.0 is the CPU build this machine has
  # on disk, while a looser requirement would pull a CUDA build of several GB. The package
  # itself requires torch>=2.2.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[testing]"
}

install_system_packages
install_python_packages
echo "napari-alma is installed in $(pwd)/.venv"
