#!/usr/bin/env bash
# vm/boot-systemd.sh — boot the Debian+systemd image from vm/image.sh under qemu TCG
# (busybox initramfs -> switch_root -> systemd PID 1, real system bus, udev). Once boot has
# finished, vmtest.service runs SHARE/run.sh; exit status = its rc (124 timeout, 125 no rc).
# The image is opened snapshot=on: never modified.
# usage: vm/boot-systemd.sh -s SHARE [-w WORKDIR] [-i IMG] [-m] [-t SECS] [-a "cmdline"] [-o LOG] [-v]
#   -i  the image (default WORKDIR/machine.ext4)
#   -m  mask units a throw-away test VM does not need (saves ~1 s; no logind, no getty)
#   other options and env as vm/boot.sh; cmdline flags: vmtest.clean, vmtest.nopoweroff,
#   vmtest.analyze (systemd-analyze output in SHARE/out/)
# Time here: ~9.7-10.5 s per boot with a trivial test (~8.2 s with -m).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
MASK="systemd.mask=e2scrub_reap.service systemd.mask=systemd-logind.service systemd.mask=systemd-update-utmp.service
systemd.mask=systemd-user-sessions.service systemd.mask=serial-getty@ttyS0.service systemd.mask=dev-hugepages.mount
systemd.mask=dev-mqueue.mount systemd.mask=sys-kernel-debug.mount"
WORK=${VMTEST_DIR:-$HERE/../../../.vmtest}; APPEND=""; IMG=""; fwd=()
while getopts "s:w:i:t:a:o:mv" o; do case $o in
  w) WORK=$OPTARG;; i) IMG=$OPTARG;; a) APPEND="$APPEND $OPTARG";; m) APPEND="$(echo $MASK) $APPEND";;
  s|t|o) fwd+=("-$o" "$OPTARG");; v) fwd+=(-v);;
  *) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2;; esac; done
IMG=${IMG:-$(realpath -m "$WORK")/machine.ext4}
[ -f "$IMG" ] || { echo "boot-systemd: ERROR: no $IMG: run vm/rootfs.sh and vm/image.sh first" >&2; exit 2; }
exec "$HERE/boot.sh" -w "$WORK" -r "$IMG" -a "$APPEND" "${fwd[@]}"
