#!/usr/bin/env bash
# vm/image.sh — pack the ext4 image the machine-tier VM boots: the cached base rootfs from
# vm/rootfs.sh, plus the acpigate suite installed as the Yocto recipe installs it
# (vm/install-suite.sh), plus the simulated platform of the test (tests/machine/image/: the
# chassis power simulator's unit and D-Bus policy, the i2c-stub "DIMMs", an operator unit
# hanging off host-s0-state.target, test-only drop-ins) and its binary.
# The base rootfs is never modified: everything goes into an overlay upper dir that is thrown
# away after mkfs.ext4 -d.
# usage: vm/image.sh -b ACPIGATE_BIN -p PLATFORM_BIN [-w WORKDIR] [-o IMG]
#   default WORKDIR $VMTEST_DIR or <repo>/.vmtest, IMG WORKDIR/machine.ext4; env IMG_SIZE (1G)
# Needs root (overlay mount). Time here: ~2-4 s.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "image: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=${VMTEST_DIR:-$HERE/../../../.vmtest}; BIN=""; PLAT=""; IMG=""
while getopts "b:p:w:o:" o; do case $o in
  b) BIN=$OPTARG;; p) PLAT=$OPTARG;; w) WORK=$OPTARG;; o) IMG=$OPTARG;;
  *) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2;; esac; done
[ -n "$BIN" ] && [ -n "$PLAT" ] || { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (overlay mount)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found (e2fsprogs)"
WORK=$(realpath -m "$WORK"); IMG=${IMG:-$WORK/machine.ext4}
[ -x "$WORK/rootfs/usr/lib/systemd/systemd" ] || die "no base rootfs in $WORK/rootfs: run vm/rootfs.sh"
[ -x "$PLAT" ] || die "no platform simulator binary $PLAT"
t0=$(date +%s.%N)

S=$WORK/stage
cleanup() { mountpoint -q "$S/merged" && umount "$S/merged"; rm -rf "$S"; }
trap cleanup EXIT
cleanup
mkdir -p "$S/upper" "$S/work" "$S/merged"
mount -t overlay overlay -o "lowerdir=$WORK/rootfs,upperdir=$S/upper,workdir=$S/work" "$S/merged"
R=$S/merged

"$HERE/install-suite.sh" "$R" "$BIN" ${UNITS_DIR:-}

# the simulated platform and the test's own units (files laid out as in the image)
cp -a "$HERE/../image/." "$R/"
# ipmi-lan refuses a users file that group or others can read (git keeps only 0644/0755)
chown root:root "$R/etc/acpigate/ipmi-lan-users.json"; chmod 0600 "$R/etc/acpigate/ipmi-lan-users.json"
install -D -m 0755 "$PLAT" "$R/usr/local/bin/machine-platform"
strip "$R/usr/local/bin/machine-platform" 2>/dev/null || true
# The upstream IPMI units acpigate takes over from, enabled as their packages enable them.
systemctl --root="$R" enable machine-platform.service operator-s0-hook.service \
  phosphor-ipmi-host.service machine-kcsbridge.service phosphor-ipmi-net@lo.socket 2>&1 | sed 's/^/image: /' >&2

# mkfs.ext4 -d writes every file of the tree into the (sparse) image: check that the disk
# holding the image has room for the tree plus ext4's metadata now, so a full disk is named
# as such instead of surfacing as a libnss lookup error in the middle of mkfs.
need_kib=$(( $(du -sxk "$R" | cut -f1) + 64 * 1024 ))
mkdir -p "$(dirname "$IMG")"
free_kib=$(df -Pk "$(dirname "$IMG")" | awk 'NR == 2 {print $4}')
[ "$free_kib" -ge "$need_kib" ] ||
  die "not enough free disk for the image: $(dirname "$IMG") has $((free_kib / 1024)) MiB free, the image needs $((need_kib / 1024)) MiB"
rm -f "$IMG.new"; truncate -s "${IMG_SIZE:-1G}" "$IMG.new"
mkfs.ext4 -q -F -L rootfs -d "$R" "$IMG.new" "${IMG_SIZE:-1G}"
mv "$IMG.new" "$IMG"
log "OK: $IMG in $(echo "$(date +%s.%N) - $t0" | bc) s"
