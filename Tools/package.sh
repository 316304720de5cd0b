#!/usr/bin/env bash
# Installs soundloc from a checkout, or makes a Debian package of it (the Makefile's `install` and `deb`).
#
#   Tools/package.sh build                         release binary, Swift runtime linked in, in $SCRATCH
#   Tools/package.sh install [PREFIX] [DESTDIR]    build, then copy into DESTDIR/PREFIX (default /usr/local)
#   Tools/package.sh deb [OUTDIR]                  build, then OUTDIR/soundloc_VERSION_ARCH.deb (default out/deb)
#
# What goes where (PREFIX /usr, as in the package):
#   /usr/bin/soundloc                                   the binary (needs only Debian's libraries: see Depends)
#   /usr/share/soundloc/dsol-music-{int8,fp32}.safetensors, /usr/share/soundloc/demo/   models and the demo clip
#   /etc/soundloc/soundloc.yaml                         the settings (a conffile in the package)
#   /usr/lib/systemd/system/soundloc.{socket,service}   the units
#   /usr/share/doc/soundloc/                            README, CONFIG, PROTOCOL, model card, board examples
# With another PREFIX the paths inside the config, the examples and the units follow it; the settings go to
# PREFIX/etc/soundloc unless PREFIX is /usr (then /etc/soundloc).
# Environment: SCRATCH (build folder, default .build-deb, git-ignored), SWIFT (default swift).
set -euo pipefail

say() { printf 'package: %s\n' "$*" >&2; }
die() { printf 'package: error: %s\n' "$*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=${SCRATCH:-$repo/.build-deb}
swift=${SWIFT:-swift}
version=$(sed -n 's/^ *static let release = "\(.*\)"$/\1/p' "$repo/Sources/soundloc/Soundloc.swift")
[[ -n $version ]] || die "cannot read the release from Sources/soundloc/Soundloc.swift"

build() {
  say "building the release binary in $scratch (Swift runtime linked statically)"
  (cd "$repo" && "$swift" build -c release --product soundloc --static-swift-stdlib --scratch-path "$scratch" >&2) \
    || die "swift build failed"
  binary=$scratch/release/soundloc
  if objdump -p "$binary" | grep -q 'NEEDED.*libswift'; then die "$binary still needs the Swift runtime's shared libraries"; fi
}

# stage ROOT PREFIX SYSCONFDIR: the installed tree under ROOT.
stage() {
  local root=$1 prefix=$2 etc=$3
  local share=$prefix/share/soundloc doc=$prefix/share/doc/soundloc units=$prefix/lib/systemd/system
  install -d "$root$prefix/bin" "$root$share/demo" "$root$doc/examples" "$root$etc/soundloc" "$root$units"
  install -m 0755 "$binary" "$root$prefix/bin/soundloc"
  # Stripped as Debian strips its binaries: 100 MB with debug information and symbols, 66 MB without (most of
  # it is the Swift runtime and Foundation's ICU data, linked in).
  strip "$root$prefix/bin/soundloc"
  install -m 0644 "$repo"/Models/dsol-music-int8.safetensors "$repo"/Models/dsol-music-fp32.safetensors "$root$share/"
  install -m 0644 "$repo"/Models/demo/* "$root$share/demo/"
  # Paths inside the files follow the prefix: /usr/share/soundloc, /usr/bin/soundloc, /etc/soundloc.
  local edit=(-e "s#/usr/share/soundloc#$share#g" -e "s#/usr/share/doc/soundloc#$doc#g"
              -e "s#/usr/bin/soundloc#$prefix/bin/soundloc#g" -e "s#/etc/soundloc#$etc/soundloc#g")
  sed "${edit[@]}" "$repo/Firmware-Configs/installed/soundloc.yaml" > "$root$etc/soundloc/soundloc.yaml"
  chmod 0644 "$root$etc/soundloc/soundloc.yaml"
  for board in "$repo"/Firmware-Configs/*.yaml; do
    sed "${edit[@]}" "$board" > "$root$doc/examples/$(basename "$board")"
  done
  for unit in soundloc.socket soundloc.service; do
    sed "${edit[@]}" "$repo/Firmware-Configs/$unit" > "$root$units/$unit"
  done
  install -m 0644 "$repo/README.md" "$repo/docs/CONFIG.md" "$repo/docs/PROTOCOL.md" "$repo/Models/MODEL_CARD.md" "$root$doc/"
  chmod 0644 "$root$doc"/examples/* "$root$units"/*
}

# The Debian packages that hold the shared libraries the binary asks for (objdump's NEEDED, found through
# ldconfig, owner from dpkg -S), each at least the version installed here, which the binary was linked with.
depends() {
  local arch lib path owner seen=() out=()
  arch=$(dpkg --print-architecture)
  for lib in $(objdump -p "$binary" | awk '$1 == "NEEDED" {print $2}'); do
    # "libfoo.so.1 => /path (addr)", or for the dynamic loader "/path/ld-linux....so.2 (addr)".
    path=$(ldd "$binary" | awk -v lib="$lib" '$1 == lib && $3 ~ /^\// {print $3} $1 ~ "/" lib "$" {print $1}')
    [[ -n $path ]] || die "ldd cannot find $lib"
    owner=""
    # dpkg knows the path a package shipped, which usrmerge may have moved: try the path, its target and both
    # without /usr.
    for candidate in "$path" "$(readlink -f "$path")" "${path#/usr}" "$(readlink -f "$path" | sed 's#^/usr##')"; do
      owner=$(dpkg -S "$candidate" 2>/dev/null | sed -n '1s/:.*//p') && [[ -n $owner ]] && break
    done
    [[ -n $owner ]] || die "no Debian package owns $path ($lib)"
    [[ " ${seen[*]} " == *" $owner "* ]] && continue
    seen+=("$owner")
    local installed
    installed=$(dpkg-query -W -f '${Version}' "$owner:$arch" 2>/dev/null || dpkg-query -W -f '${Version}' "$owner")
    out+=("$owner (>= ${installed%-*})")
  done
  (IFS=,; printf '%s' "${out[*]}" | sed 's/,/, /g')
}

command=${1:-}
case "$command" in
  build)
    build
    echo "$binary"
    ;;
  install)
    prefix=${2:-/usr/local}
    destdir=${3:-}
    [[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$prefix'"
    build
    etc=$prefix/etc
    [[ $prefix == /usr ]] && etc=/etc
    if [[ -f $destdir$etc/soundloc/soundloc.yaml ]]; then
      keep=$(mktemp); cp "$destdir$etc/soundloc/soundloc.yaml" "$keep"
    fi
    stage "$destdir" "$prefix" "$etc"
    if [[ -n ${keep:-} ]]; then  # an existing config is the user's: the new one goes beside it
      mv "$destdir$etc/soundloc/soundloc.yaml" "$destdir$etc/soundloc/soundloc.yaml.new"
      mv "$keep" "$destdir$etc/soundloc/soundloc.yaml"
      say "kept $etc/soundloc/soundloc.yaml; the new default is soundloc.yaml.new"
    fi
    say "installed under ${destdir}${prefix} (settings: $etc/soundloc/soundloc.yaml)"
    if [[ -z $destdir && -d /run/systemd/system ]]; then
      say "units in $prefix/lib/systemd/system; for systemd to find them: systemctl link $prefix/lib/systemd/system/soundloc.{socket,service}"
    fi
    ;;
  deb)
    outdir=${2:-$repo/out/deb}
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found (a Debian system is needed)"
    build
    arch=$(dpkg --print-architecture)
    tree=$scratch/deb-tree
    rm -rf "$tree"
    stage "$tree" /usr /etc
    install -d -m 0755 "$tree/DEBIAN"
    deps=$(depends)
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    cat > "$tree/DEBIAN/control" <<EOF
Package: soundloc
Version: $version
Architecture: $arch
Maintainer: soundloc developers <soundloc@localhost>
Installed-Size: $size
Depends: $deps
Recommends: alsa-utils
Section: sound
Priority: optional
Description: which objects in view are making the sound, and where
 A headless appliance for single-board computers: it watches a camera (V4L2),
 listens to a microphone (ALSA) and publishes, frame by frame, which of the
 objects in view are sounding and where (one heat map per class) on a UNIX
 socket, with the DSOL model (NeurIPS 2020) shipped int8 and fp32.
 .
 systemctl enable --now soundloc.socket soundloc.service starts it; settings
 in /etc/soundloc/soundloc.yaml (soundloc check --config checks them).
EOF
    echo /etc/soundloc/soundloc.yaml > "$tree/DEBIAN/conffiles"
    # Nothing to create and so nothing to remove: the service runs as a dynamic user, the socket's folder is
    # systemd's. The scripts only tell a running systemd that unit files came or went, and stop the service.
    cat > "$tree/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
EOF
    cat > "$tree/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop soundloc.service soundloc.socket 2>/dev/null || true
fi
EOF
    cat > "$tree/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
EOF
    chmod 0755 "$tree/DEBIAN/postinst" "$tree/DEBIAN/prerm" "$tree/DEBIAN/postrm"
    mkdir -p "$outdir"
    deb=$outdir/soundloc_${version}_${arch}.deb
    dpkg-deb --root-owner-group -Zxz --build "$tree" "$deb" >&2 || die "dpkg-deb failed"
    say "$deb: $(du -h "$deb" | cut -f1), Depends: $deps"
    echo "$deb"
    ;;
  *)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
