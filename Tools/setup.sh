#!/usr/bin/env bash
# Installs everything soundloc needs to build, run and test on a Debian machine.
# Idempotent: re-running skips what is already present. Must run as root (apt-get).
#   Tools/setup.sh            system libraries + Python tooling for tests
#   Tools/setup.sh --train    also the CPU build of PyTorch (trainer)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
want_train=0
for arg in "$@"; do
  case "$arg" in
    --train) want_train=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

debian_packages=(
  pkg-config
  libasound2-dev libv4l-dev libopenblas-dev libfftw3-dev zlib1g-dev
  alsa-utils
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]} (re-run with sudo)"
  command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed (network or mirror problem?)"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
else
  say "Debian packages present"
fi

for pc in alsa libv4l2 openblas fftw3f zlib; do
  pkg-config --exists "$pc" || die "pkg-config cannot find '$pc' after install"
done

command -v swift >/dev/null || die "swift toolchain not on PATH (expected Swift 6.x, e.g. /opt/swift/usr/bin)"
command -v python3 >/dev/null || die "python3 not found"

py_packages=(numpy scipy pytest)
if ((want_train)); then
  py_packages+=(safetensors)
fi
py_missing=()
for p in "${py_packages[@]}"; do
  python3 -c "import $p" 2>/dev/null || py_missing+=("$p")
done
if ((${#py_missing[@]})); then
  say "installing Python packages: ${py_missing[*]}"
  python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}" || die "pip install failed: ${py_missing[*]}"
fi
if ((want_train)); then
  if ! python3 -c "import torch" 2>/dev/null; then
    say "installing the CPU build of PyTorch (about 0.2 GB)"
    python3 -m pip install -q --disable-pip-version-check "torch==2.13.0+cpu" \
      || die "could not install torch==2.13.0+cpu"
  fi
fi
say "ready ($(swift --version 2>/dev/null | head -1))"
