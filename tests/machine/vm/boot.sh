#!/usr/bin/env bash
# vm/boot.sh — boot the test VM (qemu TCG, uncompressed vmlinux via PVH + busybox initramfs)
# with SHARE exported over virtio-9p as /mnt/host; the guest runs SHARE/run.sh, writes
# SHARE/out/{run.log,rc} and powers off. Exit status = the guest script's rc
# (124 timeout, 125 guest wrote no rc, 2 usage/setup error).
# usage: vm/boot.sh -s SHARE [-w WORKDIR] [-r ROOTFS_IMG] [-t SECS] [-a "cmdline"] [-o LOG] [-v]
#   -w  default $VMTEST_DIR or <repo>/.vmtest (vm/kernel.sh + vm/initramfs.sh output)
#   -r  ext4 image: boot it with systemd instead (see vm/boot-systemd.sh); opened snapshot=on
#   -t  timeout (default 300)   -o serial log (default SHARE/out/serial.log)   -v console to stderr
# env:  ACCEL (tcg; KVM here is PVM and cannot run stock kernels), MEM (1024), SMP (1),
#       QEMU_EXTRA (more qemu args), KERNEL, INITRD (override the files from WORKDIR)
# Time here: ~2.4-3.2 s per boot incl. a short i2c test (busybox); ~10 s with systemd.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "boot: $*" >&2; }
die() { log "ERROR: $*"; exit 2; }

WORK=${VMTEST_DIR:-$HERE/../../../.vmtest}; SHARE=""; ROOTFS=""; TIMEOUT=300; APPEND=""; LOG=""; VERBOSE=""
while getopts "s:w:r:t:a:o:v" o; do case $o in
  s) SHARE=$OPTARG;; w) WORK=$OPTARG;; r) ROOTFS=$OPTARG;; t) TIMEOUT=$OPTARG;;
  a) APPEND=$OPTARG;; o) LOG=$OPTARG;; v) VERBOSE=1;;
  *) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2;; esac; done
[ -n "$SHARE" ] || { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; die "-s SHARE is required"; }
WORK=$(realpath -m "$WORK")
SHARE=$(realpath "$SHARE") || die "share dir not found"
KERNEL=${KERNEL:-$WORK/kernel/vmlinux}; INITRD=${INITRD:-$WORK/initramfs.cpio.gz}
[ -f "$KERNEL" ] || die "no kernel $KERNEL: run vm/kernel.sh"
[ -f "$INITRD" ] || die "no initramfs $INITRD: run vm/initramfs.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x "$SHARE/run.sh" ] || [[ "$APPEND" == *test=* ]] || log "WARNING: $SHARE/run.sh missing or not executable"
ACCEL=${ACCEL:-tcg}; MEM=${MEM:-1024}; SMP=${SMP:-1}
mkdir -p "$SHARE/out"; rm -f "$SHARE/out/rc"
LOG=${LOG:-$SHARE/out/serial.log}

args=(-accel "$ACCEL" -m "$MEM" -smp "$SMP" -nographic -no-reboot -nodefaults -serial stdio
      -kernel "$KERNEL" -initrd "$INITRD"
      -virtfs "local,path=$SHARE,mount_tag=hostshare,security_model=none,id=hostshare"
      -device virtio-rng-pci)
cmdline="console=ttyS0 panic=-1 $APPEND"
if [ -n "$ROOTFS" ]; then
  ROOTFS=$(realpath "$ROOTFS") || die "rootfs image not found"
  args+=(-drive "file=$ROOTFS,format=raw,if=virtio,snapshot=on")
  cmdline="$cmdline root=/dev/vda"
fi
read -r -a extra <<<"${QEMU_EXTRA:-}"; args+=("${extra[@]}")

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/console"
# serial console -> LOG, each line prefixed with host seconds since start
python3 -u -c '
import sys, time
t0 = time.monotonic(); log = open(sys.argv[1], "w"); echo = sys.argv[2] == "1"; buf = b""
def out(l):
    s = "[%8.3f] %s\n" % (time.monotonic() - t0, l.decode("utf-8", "replace").rstrip("\r"))
    log.write(s); log.flush()
    if echo: sys.stderr.write(s); sys.stderr.flush()
for chunk in iter(lambda: sys.stdin.buffer.read1(4096), b""):
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for l in lines: out(l)
if buf: out(buf)
' "$LOG" "${VERBOSE:-0}" < "$tmp/console" &
tpid=$!
log "qemu ($ACCEL, ${MEM}M) kernel=$KERNEL${ROOTFS:+ rootfs=$ROOTFS} share=$SHARE timeout=${TIMEOUT}s"
t0=$(date +%s.%N)
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" -append "$cmdline" </dev/null >"$tmp/console" 2>&1 &
qpid=$!   # timeout(1), which forwards TERM/INT to qemu
stopped=""
trap 'stopped=1; kill -TERM "$qpid" 2>/dev/null || true' INT TERM
set +e
wait "$qpid"; qrc=$?
[ -n "$stopped" ] && { wait "$qpid"; log "interrupted"; }
wait "$tpid"
set -e
wall=$(echo "$(date +%s.%N) - $t0" | bc)
[ -n "$stopped" ] && exit 130
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  log "TIMEOUT after ${TIMEOUT}s (wall $wall s); last console lines:"; tail -5 "$LOG" >&2; exit 124
fi
if [ ! -f "$SHARE/out/rc" ]; then
  log "guest wrote no rc (qemu exit $qrc, wall $wall s); last console lines:"; tail -8 "$LOG" >&2; exit 125
fi
rc=$(cat "$SHARE/out/rc")
log "guest rc=$rc, qemu exit $qrc, wall ${wall} s, log $LOG"
exit "$rc"
