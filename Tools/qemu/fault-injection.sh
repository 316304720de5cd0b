#!/bin/sh
# Guest half of the driver fault-injection test: Tools/qemu/run-in-vm.sh runs it in the VM (SOUNDLOC_VM_SCRIPT) as
#   sh fault-injection.sh SOUNDLOC [SECONDS_BETWEEN_FAULTS]
# `soundloc run --config /opt/test/vm.yaml` serves /tmp/soundloc.sock from the vivid camera and the snd-aloop card,
# with one `soundloc watch` client. Then, in turn for the camera and the sound card, the driver is unbound from its
# device (what an unplug does to an open handle), the module unloaded once soundloc has let go of it, and loaded again.
# Exit 0 when the client was told of each loss and each recovery (STATUS), stayed on its first connection, and frames
# came again after both; the last lines of both logs are printed either way.
set -u
soundloc=$1
pause=${2:-3}
sock=/tmp/soundloc.sock
modules=/lib/modules/soundloc
say() { echo "fault: $*"; }
dump() {
    echo "fault: --- soundloc run log"; tail -n 40 /tmp/run.log
    echo "fault: --- the client's STATUS lines"; grep '^status: ' /tmp/watch.log
    echo "fault: --- the client's last frames and notes"; grep -v '^status: ' /tmp/watch.log | tail -n 12
}
fail() { say "FAIL: $*"; dump; kill "$run_pid" "$watch_pid" 2>/dev/null; exit 1; }
frames() { grep -c '^#' /tmp/watch.log; }
more_frames_than() { [ "$(frames)" -gt "$1" ]; }
saw() { grep -q "$1" /tmp/watch.log; }
# wait_for SECONDS COMMAND...: true as soon as COMMAND is, polling five times a second
wait_for() {
    n=$(($1 * 5)); shift
    while [ "$n" -gt 0 ]; do "$@" 2>/dev/null && return 0; sleep 0.2; n=$((n - 1)); done
    return 1
}

run_pid="" watch_pid=""
"$soundloc" run --config /opt/test/vm.yaml >/tmp/run.log 2>&1 &
run_pid=$!
wait_for 60 test -S "$sock" || fail "soundloc run never opened $sock"
"$soundloc" watch --socket "$sock" >/tmp/watch.log 2>&1 &
watch_pid=$!
# A debug build on a busy host publishes a frame every few seconds in the VM: the waits are long, the counts small.
wait_for 120 more_frames_than 2 || fail "no frames reached the client before any fault"
say "serving: $(frames) frames before the faults"

# unplug DRIVER_DIR DEVICE_PREFIX MODULE WHAT: unbind, wait for soundloc's STATUS, unload, reload, wait for recovery
unplug() {
    drv=$1 prefix=$2 module=$3 what=$4
    dev=$(ls "$drv" | grep "^$prefix" | head -n 1)
    [ -n "$dev" ] || fail "no $prefix device bound to $drv"
    # ALSA's unbind waits until every handle on the card is closed, so it runs beside us.
    echo "$dev" >"$drv/unbind" &
    unbind_pid=$!
    wait_for 30 saw "$what failed" || fail "$what: no STATUS failed after unbinding $dev"
    say "$what: unbound $dev; the client was told: $(grep "$what failed" /tmp/watch.log | head -n 1)"
    wait_for 30 rmmod "$module" || fail "$what: module $module still in use 30 s after the unbind"
    wait "$unbind_pid"
    before=$(frames)
    say "$what: $module unloaded; $before frames so far"
    sleep "$pause"
    kill -0 "$run_pid" 2>/dev/null || fail "soundloc run exited while the $what device was gone"
    params=""
    [ "$module" = vivid ] && params=$VIVID_PARAMS
    insmod "$modules/$(echo "$module" | tr _ -).ko" $params || fail "cannot load $module again"
    wait_for 60 saw "$what recovered" || fail "$what: no STATUS recovered 60 s after $module came back"
    wait_for 120 more_frames_than $((before + 2)) || fail "$what: frames did not come again after the recovery"
    say "$what: $module loaded again; the client was told: $(grep "$what recovered" /tmp/watch.log | tail -n 1); $(frames) frames"
}

unplug /sys/bus/platform/drivers/vivid vivid vivid video
unplug /sys/bus/platform/drivers/snd_aloop snd_aloop snd_aloop audio

banners=$(grep -c '(protocol' /tmp/watch.log)
[ "$banners" -eq 1 ] || fail "the client connected $banners times: it lost its connection"
kill -0 "$watch_pid" 2>/dev/null || fail "the client is gone"
kill -TERM "$run_pid"
wait "$run_pid"
status=$?
wait_for 10 saw "server stopped" || say "(the client saw no server STATUS stopped)"
kill "$watch_pid" 2>/dev/null
[ "$status" -eq 0 ] || fail "soundloc run exited with status $status after SIGTERM"
dump
say "OK: both devices lost and recovered, $(frames) frames to one client on one connection"
