#!/usr/bin/env bash
# Runs BINARY [ARGS...] inside a throw-away QEMU VM that boots Debian's own kernel package with the
# vivid virtual camera and the snd-dummy / snd-aloop sound cards, and exits with BINARY's status.
#
#   Tools/qemu/run-in-vm.sh BINARY [ARGS...]
#
# The guest console (kernel messages, BINARY's stdout and stderr) is copied to stdout. Exit status:
# BINARY's own, or 124 when the VM timed out, or 125 when the harness or the VM failed.
# Environment:
#   SOUNDLOC_QEMU_CACHE   cache folder (default: <repo>/.cache/qemu, git-ignored)
#   SOUNDLOC_VM_TIMEOUT   seconds before the VM is killed (default 300)
#   SOUNDLOC_VM_MEMORY    guest memory (default 1G)
#   SOUNDLOC_VIVID_PARAMS vivid module options (default: one instance, one webcam capture node)
#   SOUNDLOC_VM_FILES     extra files for the guest, "HOST:GUEST" pairs separated by spaces (e.g. a model)
#   SOUNDLOC_VM_SCRIPT    a busybox-sh script run in the guest as `sh SCRIPT GUEST_BINARY [ARGS...]` instead of
#                         BINARY itself (its status is reported); it finds the driver modules in
#                         /lib/modules/soundloc and vivid's options in $VIVID_PARAMS (e.g. qemu/fault-injection.sh)
#   SOUNDLOC_*            other SOUNDLOC_ variables (e.g. SOUNDLOC_LOG_LEVEL) are passed to BINARY
# Needs qemu-system-x86, busybox-static, cpio and apt (Tools/setup.sh --test installs them). The kernel
# package current at the first run is fetched with `apt-get download` (~70 MB, ~10 s) and its image and
# modules are kept in the cache (delete the cache to take a newer kernel). Without KVM a run takes about
# 10-30 s: the guest reaches BINARY 5-9 s after power-on.
set -euo pipefail
# Under pipefail a reader that stops early (head -1, awk's exit) fails the whole pipeline with SIGPIPE
# (141) whenever the writer is still writing: every pipeline below reads its input to the end.

say() { printf 'run-in-vm: %s\n' "$*" >&2; }
die() { printf 'run-in-vm: error: %s\n' "$*" >&2; exit 125; }
need_setup() { die "$* (install the test tools with: sudo Tools/setup.sh --test)"; }

[[ $# -ge 1 ]] || { sed -n '2,21p' "$0" >&2; exit 125; }
binary=$1; shift
[[ -f $binary && -x $binary ]] || die "'$binary' is not an executable file"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SOUNDLOC_QEMU_CACHE:-$repo/.cache/qemu}
timeout_s=${SOUNDLOC_VM_TIMEOUT:-300}
memory=${SOUNDLOC_VM_MEMORY:-1G}
vivid_params=${SOUNDLOC_VIVID_PARAMS:-n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0}
# Modules to load (dependencies are added); snd-dummy's card is "Dummy", snd-aloop's is "Loopback".
wanted_modules=(vivid snd-dummy snd-aloop)

qemu=$(command -v qemu-system-x86_64 || true)
[[ -n $qemu ]] || need_setup "qemu-system-x86_64 not found"
busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do [[ -x $candidate ]] && { busybox=$candidate; break; }; done
[[ -n $busybox ]] || need_setup "busybox not found"
for tool in cpio dpkg-deb apt-get apt-cache ldd timeout; do
  command -v "$tool" >/dev/null || need_setup "'$tool' not found"
done

mkdir -p "$cache"
# One harness at a time per cache: the kernel step writes shared files.
if command -v flock >/dev/null; then
  exec 9>"$cache/.lock"
  flock 9
fi

# --- 1. Debian's kernel and the modules we need, cached once per kernel version --------------------
kernel_dir=$cache/kernel
if [[ ! -f $kernel_dir/ready ]]; then
  kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !p {print $2; p=1}'; }
  pkg=$(kernel_package)
  if [[ -z $pkg && $(id -u) -eq 0 ]]; then  # images often ship without package lists
    say "no apt package lists; running apt-get update"
    apt-get update -qq >&2 || true
    pkg=$(kernel_package)
  fi
  [[ -n $pkg ]] || need_setup "apt cannot resolve linux-image-amd64 (is 'apt-get update' done?)"
  say "fetching Debian kernel package $pkg (one time)"
  rm -rf "$kernel_dir" "$cache"/download.*
  work=$(mktemp -d "$cache/download.XXXXXX")
  (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>"$work/apt.log") \
    || { cat "$work/apt.log" >&2; need_setup "apt-get download $pkg failed"; }
  mkdir -p "$work/x"
  # Only the kernel image and the media and sound module trees: the rest is most of the package.
  dpkg-deb --fsys-tarfile "$work"/*.deb \
    | tar -x -C "$work/x" --wildcards '*/vmlinuz-*' '*/kernel/drivers/media/*' '*/kernel/sound/*' \
    || die "cannot unpack $pkg"
  vmlinuz=$(find "$work/x" -name 'vmlinuz-*' -type f | sed -n 1p)
  [[ -n $vmlinuz ]] || die "$pkg has no vmlinuz"

  mkdir -p "$work/kernel/modules"
  cp "$vmlinuz" "$work/kernel/vmlinuz"
  # Index: module name (dashes) -> file. Busybox's insmod cannot read compressed modules, so they are
  # decompressed here when picked.
  declare -A module_file=()
  while IFS= read -r f; do
    name=$(basename "$f"); name=${name%%.ko*}; module_file[${name//_/-}]=$f
  done < <(find "$work/x" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

  declare -A loaded=()
  order=()
  add_module() {  # depth-first so that dependencies come before their users
    local name=${1//_/-} src dst deps dep
    [[ -n ${loaded[$name]:-} ]] && return 0
    loaded[$name]=1
    src=${module_file[$name]:-}
    [[ -n $src ]] || die "module $name is not in $pkg's media or sound trees"
    dst=$work/kernel/modules/$name.ko
    case $src in
      *.xz) xz -dc "$src" >"$dst" ;;
      *.zst) zstd -qdc "$src" >"$dst" ;;
      *.gz) gzip -dc "$src" >"$dst" ;;
      *) cp "$src" "$dst" ;;
    esac || die "cannot decompress $src (xz-utils / zstd missing?)"
    deps=$(tr '\0' '\n' <"$dst" | sed -n 's/^depends=//p' | sed -n 1p)
    for dep in ${deps//,/ }; do add_module "$dep"; done
    order+=("$name")
  }
  for m in "${wanted_modules[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" >"$work/kernel/load-order"
  echo "$pkg" >"$work/kernel/package"
  touch "$work/kernel/ready"
  mv "$work/kernel" "$kernel_dir"
  rm -rf "$work"
  say "cached $pkg: $(wc -l <"$kernel_dir/load-order") modules"
fi

# --- 2. An initramfs: busybox, the modules, BINARY and every shared library it needs -----------------
run_dir=$(mktemp -d "$cache/run.XXXXXX")
cleanup() { rm -rf "$run_dir"; }
trap cleanup EXIT
root=$run_dir/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,opt/test,lib/modules/soundloc}
cp "$kernel_dir"/modules/*.ko "$root/lib/modules/soundloc/"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

declare -A copied=() lib_dirs=()
copy_file() {  # keeps the host path, so RPATHs ($ORIGIN-free ones like /opt/swift/...) still resolve
  local path=$1
  [[ -n ${copied[$path]:-} ]] && return 0
  copied[$path]=1
  mkdir -p "$root$(dirname "$path")"
  cp -L "$path" "$root$path"
}
copy_libraries_of() {
  local file=$1 line path missing=""
  while read -r line; do  # read trims ldd's leading tab
    case $line in
      *"=> not found"*) missing+=" ${line%% =>*}" ;;
      *"=> /"*) path=${line#*=> }; path=${path%% (*}; copy_file "$path"; lib_dirs[$(dirname "$path")]=1 ;;
      /*) path=${line%% (*}; copy_file "$path" ;;  # the dynamic loader
    esac
  done < <(ldd "$file" 2>/dev/null || true)
  [[ -z $missing ]] || die "$file needs libraries this machine lacks:$missing"
}

name=$(basename "$binary")
guest_binary=/opt/test/$name
# Debug info is most of a debug build; the guest only needs the code (symbols stay for backtraces).
if command -v objcopy >/dev/null && objcopy --strip-debug "$binary" "$root$guest_binary" 2>/dev/null; then :
else cp "$binary" "$root$guest_binary"; fi
chmod +x "$root$guest_binary"
copy_libraries_of "$binary"
for pair in ${SOUNDLOC_VM_FILES:-}; do
  host_file=${pair%%:*}; guest_file=${pair#*:}
  [[ -f $host_file && $guest_file == /* ]] || die "SOUNDLOC_VM_FILES entry '$pair' is not HOST:/ABSOLUTE/GUEST with an existing HOST file"
  mkdir -p "$root$(dirname "$guest_file")" && cp -L "$host_file" "$root$guest_file"
done
copy_libraries_of "$busybox"
launcher=""
if [[ -n ${SOUNDLOC_VM_SCRIPT:-} ]]; then
  [[ -f $SOUNDLOC_VM_SCRIPT ]] || die "SOUNDLOC_VM_SCRIPT '$SOUNDLOC_VM_SCRIPT' is not a file"
  cp "$SOUNDLOC_VM_SCRIPT" "$root/opt/test/script.sh"
  launcher="sh /opt/test/script.sh "
fi

# Loaded at run time, so ldd does not list them: libv4l2 (dlopen'ed by the camera source) with its
# plugins, and alsa-lib's configuration.
libv4l2=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p) | awk '/libv4l2\.so\.0 .*x86-64/ && !p {print $NF; p=1}')
if [[ -n $libv4l2 ]]; then
  copy_file "$libv4l2"; lib_dirs[$(dirname "$libv4l2")]=1
  copy_libraries_of "$libv4l2"
  plugins=$(dirname "$libv4l2")/libv4l
  if [[ -d $plugins ]]; then mkdir -p "$root$plugins" && cp -rL "$plugins/." "$root$plugins/"; fi
else
  say "warning: libv4l2.so.0 not found; the guest cameras will only offer their native formats"
fi
if [[ -d /usr/share/alsa ]]; then mkdir -p "$root/usr/share" && cp -r /usr/share/alsa "$root/usr/share/"; fi

quote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }  # for busybox sh, which lacks $'...'
args=""
for a in "$@"; do args+=" $(quote "$a")"; done
exports=""
while IFS='=' read -r key _; do
  case $key in SOUNDLOC_VM_*|SOUNDLOC_QEMU_*|SOUNDLOC_VIVID_*) ;;
    SOUNDLOC_*) exports+="export $key=$(quote "${!key}")"$'\n' ;; esac
done < <(env)
ld_path=$(IFS=:; echo "${!lib_dirs[*]}")
modules_and_params=""
while IFS= read -r m; do
  params=""
  [[ $m == vivid ]] && params=$vivid_params
  modules_and_params+="load $m $params"$'\n'
done <"$kernel_dir/load-order"

cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel could not give init a console: take it now.
exec 0</dev/console 1>/dev/console 2>&1
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
load() { m=\$1; shift; insmod /lib/modules/soundloc/\$m.ko "\$@" || echo "run-in-vm: cannot load module \$m"; }
$modules_and_params
# udev-less: devtmpfs creates the nodes as the drivers register; give them a moment.
i=0
while [ \$i -lt 50 ] && ! { [ -e /dev/video0 ] && ls /dev/snd/pcmC*c >/dev/null 2>&1; }; do sleep 0.1; i=\$((i+1)); done
echo "run-in-vm: guest ready at \$(cut -d' ' -f1 /proc/uptime) s: \$(ls /dev | grep -E '^video' | tr '\n' ' ')\$(ls /dev/snd 2>/dev/null | grep pcm | tr '\n' ' ')"
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root LD_LIBRARY_PATH=$ld_path VIVID_PARAMS='$vivid_params'
$exports
cd /root
$launcher$guest_binary$args
rc=\$?
echo "@@SOUNDLOC-VM-EXIT \$rc@@ at \$(cut -d' ' -f1 /proc/uptime) s"
sync
poweroff -f
INIT
chmod +x "$root/init"

initrd=$run_dir/initrd.cpio
# Uncompressed: decompressing ~100 MB in an emulated CPU costs more than copying it.
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet >"$initrd") || die "cannot build the initramfs"

# --- 3. Boot ---------------------------------------------------------------------------------------
accel=(-accel tcg,thread=multi)
if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then accel=(-accel kvm "${accel[@]}"); fi
log=$cache/last-console.log
say "booting $(cat "$kernel_dir/package") with $(du -m "$initrd" | cut -f1) MB initramfs (${accel[1]%%,*}), timeout ${timeout_s}s"
start=$(date +%s.%N)
set +e
timeout -k 5 "$timeout_s" "$qemu" -nodefaults -no-user-config -display none -monitor none -serial stdio \
  "${accel[@]}" -cpu max -smp 2 -m "$memory" -no-reboot \
  -kernel "$kernel_dir/vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" </dev/null 2>&1 \
  | tr -d '\r' | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')

if [[ $qemu_status -eq 124 || $qemu_status -eq 137 ]]; then
  say "timed out after ${timeout_s}s (guest never powered off); console log: $log"
  exit 124
fi
status=$(sed -n 's/^.*@@SOUNDLOC-VM-EXIT \([0-9]*\)@@.*$/\1/p' "$log" | tail -1)
if [[ -z $status ]]; then
  say "the guest stopped without reporting $name's exit status (qemu status $qemu_status, ${elapsed}s); console log: $log"
  exit 125
fi
if [[ $qemu_status -eq 0 ]] && grep -q 'reboot: Power down' "$log"; then
  say "guest powered off cleanly after ${elapsed}s; $name exited with status $status"
else
  say "guest did not power off cleanly (qemu status $qemu_status) after ${elapsed}s; $name exited with status $status"
  [[ $status -ne 0 ]] || status=125
fi
exit "$status"
