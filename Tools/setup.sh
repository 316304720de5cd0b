#!/usr/bin/env bash
# Installs what soundloc needs on a Debian machine. Idempotent: present packages are skipped.
# Must run as root for apt-get (it says so and stops when it cannot).
#   Tools/setup.sh           build and run: Debian's -dev libraries, pkg-config, ALSA tools
#   Tools/setup.sh --test    also everything the tests use: pytest, librosa (reference features),
#                            the CPU build of PyTorch, safetensors, ONNX / ONNX Runtime, ffmpeg, QEMU and the
#                            aarch64 cross tools, mmdebstrap and systemd-analyze, and the data-set builder's
#                            assets (Tools/dataset/install_assets.sh)
#   Tools/setup.sh --train   the trainer's Python packages (same set as --test) and the data-set assets
set -euo pipefail

want_python=0
for arg in "$@"; do
  case "$arg" in
    --test|--train) want_python=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

debian_packages=(
  pkg-config
  libasound2-dev libv4l-dev libopenblas-dev libfftw3-dev zlib1g-dev
  alsa-utils
)

apt_find_missing "${debian_packages[@]}"
if ((${#apt_missing[@]})); then
  apt_install "Debian packages" "${apt_missing[@]}"
else
  say "Debian packages present"
fi

for pc in alsa libv4l2 openblas fftw3 zlib; do
  pkg-config --exists "$pc" || die "pkg-config cannot find '$pc' after install"
done

command -v swift >/dev/null || die "swift toolchain not on PATH (expected Swift 6.x, e.g. /opt/swift/usr/bin)"
command -v python3 >/dev/null || die "python3 not found"

# Test-only Debian packages: Tools/qemu/run-in-vm.sh boots Debian's kernel (vivid camera, snd-aloop) in QEMU;
# Tools/kernels/test_arm.sh cross-builds the NEON kernels for aarch64 and runs them under qemu-user;
# the package test (Tools/tests/test_package.py) installs the .deb into a clean Debian root made by mmdebstrap and checks
# the systemd units with systemd-analyze (package systemd).
test_debian_packages=(qemu-system-x86 busybox-static cpio xz-utils ffmpeg
                      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
                      mmdebstrap systemd)
if [[ " $* " == *" --test "* ]]; then
  apt_find_missing "${test_debian_packages[@]}"
  if ((${#apt_missing[@]})); then
    apt_install "Debian test packages" "${apt_missing[@]}"
  else
    say "Debian test packages present"
  fi
fi

if ((want_python)); then
  # pip name=import name; torch is pinned to the CPU build (plain `torch` would pull ~3 GB of CUDA).
  py_packages=(numpy=numpy scipy=scipy pytest=pytest librosa=librosa soundfile=soundfile
               safetensors=safetensors onnx=onnx onnxruntime=onnxruntime tqdm=tqdm "torch==2.13.0+cpu=torch")
  py_missing=()
  for entry in "${py_packages[@]}"; do
    python3 -c "import ${entry##*=}" 2>/dev/null || py_missing+=("${entry%=*}")
  done
  if ((${#py_missing[@]})); then
    say "installing Python packages: ${py_missing[*]}"
    python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}" \
      || die "pip install failed for: ${py_missing[*]}"
  else
    say "Python packages present"
  fi
fi
if [[ " $* " == *" --test "* || " $* " == *" --train "* ]]; then
  # The data-set builder's assets (soundfonts, drawings, photos); its tests and every training run need them.
  "$(dirname "$0")/dataset/install_assets.sh" || die "data-set assets could not be installed"
fi
say "ready ($(swift --version 2>/dev/null | head -1))"
