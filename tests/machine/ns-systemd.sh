#!/usr/bin/env bash
# ns-systemd.sh — systemd as PID 1 (+ the real system dbus-daemon) in fresh pid/mount/uts/
# ipc/cgroup namespaces on a throw-away overlay of the rootfs from vm/rootfs.sh: real unit,
# target and D-Bus activation semantics without a VM (no i2c: that needs the VM). Root only.
# usage: ns-systemd.sh start [HOSTDIR]   boot, wait until running (HOSTDIR -> /mnt/host)
#        ns-systemd.sh exec CMD...       run CMD inside (nsenter, clean environment)
#        ns-systemd.sh status            print PID + state (rc 1 if not running)
#        ns-systemd.sh stop              poweroff (SIGRTMIN+4), remove cgroup + overlay
# env:   VMTEST_DIR (default <repo>/.vmtest) -> ROOTFS=$VMTEST_DIR/rootfs, NS_DIR=$VMTEST_DIR/ns
#        (both overridable); NS_TIMEOUT start timeout in s (30)
# cgroup: a private cgroup2 subtree named after the work dir, nssd.<name>.<hash>; the
# host's cgroup-v1 controllers and other processes are not touched.
# Time here: start ~0.3-0.5 s to "running", stop ~0.2-0.4 s.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "ns-systemd: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=$(realpath -m "${VMTEST_DIR:-$HERE/../../.vmtest}")
ROOTFS=$(realpath -m "${ROOTFS:-$WORK/rootfs}")
NS_DIR=$(realpath -m "${NS_DIR:-$WORK/ns}")
name=$(basename "$WORK" | sed 's/^\.*//; s/[^A-Za-z0-9_.-]/_/g')
CGNAME="nssd.${name:-ns}.$(printf %s "$NS_DIR" | sha1sum | cut -c1-8)"
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then CGROOT=/sys/fs/cgroup
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then CGROOT=/sys/fs/cgroup/unified
else CGROOT=""; fi
CG=$CGROOT/$CGNAME
PIDF=$NS_DIR/systemd.pid

# systemd's host PID, if it is alive and in our cgroup subtree
sd_pid() {
  local p; p=$(cat "$PIDF" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -r "/proc/$p/cgroup" ] && grep -q "/$CGNAME\(/\|$\)" "/proc/$p/cgroup" &&
    ! awk '{exit $3 != "Z"}' "/proc/$p/stat" 2>/dev/null && echo "$p"
}
in_ns() { local p=$1; shift; nsenter -t "$p" -m -p -u -i -C -r -w env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 "$@"; }
cg_procs() { [ -d "$CG" ] && find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null; }

cleanup() {
  local p
  if [ -d "$CG" ] && [ -n "$(cg_procs)" ]; then   # leftovers in OUR subtree only
    if [ -f "$CG/cgroup.kill" ]; then echo 1 > "$CG/cgroup.kill"; else for p in $(cg_procs); do kill -9 "$p" 2>/dev/null || true; done; fi
    for _ in $(seq 100); do [ -z "$(cg_procs)" ] && break; sleep 0.05; done
  fi
  [ -d "$CG" ] && find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ -d "$CG" ] && log "WARNING: could not remove cgroup $CG"
  rm -rf "$NS_DIR/upper" "$NS_DIR/work" "$NS_DIR/merged" "$PIDF"
}

case ${1:-} in
start)
  HOSTDIR=${2:-}
  [ "$(id -u)" = 0 ] || die "needs root"
  [ -n "$CGROOT" ] || die "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"
  [ -x "$ROOTFS/usr/lib/systemd/systemd" ] || die "no systemd rootfs at $ROOTFS: run vm/rootfs.sh"
  [ -z "$HOSTDIR" ] || HOSTDIR=$(realpath "$HOSTDIR") || die "HOSTDIR not found"
  if p=$(sd_pid); then log "already running (pid $p)"; exit 0; fi
  cleanup
  mkdir -p "$NS_DIR/upper" "$NS_DIR/work" "$NS_DIR/merged" "$CG"
  log "starting systemd on an overlay of $ROOTFS (cgroup $CG)"
  t0=$(date +%s%N)
  ( echo 0 > "$CG/cgroup.procs"
    exec unshare --cgroup --pid --fork --mount --uts --ipc \
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ROOTFS="$ROOTFS" NS_DIR="$NS_DIR" HOSTDIR="$HOSTDIR" "$HERE/ns-init.sh" ) > "$NS_DIR/init.log" 2>&1 &
  upid=$!
  p=""
  for _ in $(seq 100); do
    p=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null | awk '{print $1}' || true)
    [ -n "$p" ] && break; kill -0 "$upid" 2>/dev/null || break; sleep 0.02
  done
  [ -n "$p" ] || { tail -5 "$NS_DIR/init.log" >&2; cleanup; die "namespace init did not start"; }
  echo "$p" > "$PIDF"
  st=""
  for _ in $(seq $(( ${NS_TIMEOUT:-30} * 20 ))); do
    st=$(in_ns "$p" systemctl is-system-running 2>/dev/null || true)
    case $st in running|degraded) break;; esac
    kill -0 "$p" 2>/dev/null || break
    sleep 0.05
  done
  case $st in
    running|degraded) log "systemd pid $p state $st after $(( ($(date +%s%N) - t0) / 1000000 )) ms" ;;
    *) log "systemd did not reach running (state '${st:-none}'); init.log, jobs and journal:"
       tail -5 "$NS_DIR/init.log" >&2
       in_ns "$p" systemctl list-jobs --no-pager >&2 || true
       in_ns "$p" journalctl -b --no-pager -n 20 >&2 || true
       "$0" stop || true; exit 1 ;;
  esac
  ;;
exec)
  shift; [ $# -gt 0 ] || die "usage: ns-systemd.sh exec CMD..."
  p=$(sd_pid) || die "not running (ns-systemd.sh start first)"
  in_ns "$p" "$@"
  ;;
status)
  p=$(sd_pid) || { log "not running"; exit 1; }
  echo "pid $p state $(in_ns "$p" systemctl is-system-running 2>/dev/null || true)"
  ;;
stop)
  t0=$(date +%s%N)
  if p=$(sd_pid); then
    log "stopping systemd pid $p (SIGRTMIN+4 = poweroff)"
    kill -s SIGRTMIN+4 "$p" 2>/dev/null || true
    for _ in $(seq 200); do sd_pid >/dev/null || break; sleep 0.05; done
    if sd_pid >/dev/null; then log "still alive after 10 s: SIGKILL"; kill -9 "$p" 2>/dev/null || true; fi
  else
    log "not running"
  fi
  cleanup
  log "stopped, cleaned up in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  ;;
*) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2 ;;
esac
