# Debian package helpers shared by Tools/setup.sh and Tools/dataset/install_assets.sh.
# Source it after defining say (progress line) and die (error, exit 1).

# apt_find_missing PKG...: sets the array apt_missing to those of PKG not installed.
apt_find_missing() {
  apt_missing=()
  local p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || apt_missing+=("$p")
  done
}

# apt_install WHAT PKG...: installs PKG with apt-get (needs root); WHAT names them in the progress line.
apt_install() {
  local what=$1; shift
  [[ $(id -u) -eq 0 ]] || die "need root to install: $* (re-run with sudo)"
  command -v apt-get >/dev/null || die "apt-get not found; install by hand: $*"
  say "installing $what: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed (network or mirror problem?)"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install failed for: $*"
}
