#!/usr/bin/env bash
# vm/initramfs.sh — build the busybox initramfs for the test VMs: busybox-static, i2c-tools
# (+ their shared libs), the module subset from vm/kernel.sh, the guest helper i2ctrace, and
# an /init that (test mode) loads i2c-dev, mounts tracefs and the 9p share 'hostshare' at
# /mnt/host, runs /mnt/host/run.sh, writes /mnt/host/out/{run.log,rc} and powers off;
# with root=/dev/vda on the cmdline it instead switch_roots into systemd (vm/boot-systemd.sh).
# usage: vm/initramfs.sh [WORKDIR]     (default: $VMTEST_DIR or <repo>/.vmtest; needs vm/kernel.sh)
# out:   WORKDIR/initramfs.cpio.gz
# env:   EXTRA="host/path[:/guest/path] ..." more executables (their shared libs are copied)
#        TEST_SH=file  baked in as /test.sh (used when the share has no run.sh)
# Cmdline: test="cmd,args" runs that instead; rdshell drops to a shell. Time here: ~0.5-1 s.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "initramfs: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=$(realpath -m "${1:-${VMTEST_DIR:-$HERE/../../../.vmtest}}")
K=$WORK/kernel
[ -f "$K/kver" ] && [ -d "$K/modules/lib/modules/$(cat "$K/kver")" ] || die "no kernel modules in $K: run vm/kernel.sh first"
[ -x /bin/busybox ] && /bin/busybox --list | grep -x cpio >/dev/null || die "busybox-static not installed (apt-get install busybox-static)"
file -L /bin/busybox | grep 'statically linked' >/dev/null || die "/bin/busybox is not static (install busybox-static)"
[ -x /usr/sbin/i2cget ] || die "i2c-tools not installed (apt-get install i2c-tools)"

W=$(mktemp -d "$WORK/initramfs.XXXXXX"); trap 'rm -rf "$W"' EXIT
log "building in $W"
mkdir -p "$W"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,mnt/host,newroot,etc,lib64,root}
cp /bin/busybox "$W/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$W/bin/$a" ] || ln -s busybox "$W/bin/$a"; done

copy_elf() {  # copy an executable and the shared libraries it needs (as resolved on the host)
  local src=$1 dst=$2 l
  [ -e "$src" ] || die "EXTRA file not found: $src"
  mkdir -p "$W$(dirname "$dst")"; cp -L "$src" "$W$dst"
  if ldd "$src" >/dev/null 2>&1; then
    ldd "$src" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}' | while read -r l; do
      [ -e "$W$l" ] || { mkdir -p "$W$(dirname "$l")"; cp -L "$l" "$W$l"; }
    done
  fi
}
for t in i2cget i2cset i2cdetect i2cdump i2ctransfer; do copy_elf "/usr/sbin/$t" "/usr/sbin/$t"; done
for e in ${EXTRA:-}; do
  src=${e%%:*}; dst=${e#*:}; [ "$dst" = "$e" ] && dst=/usr/bin/$(basename "$src")
  log "extra: $src -> $dst"; copy_elf "$src" "$dst"
done
cp -a "$K/modules/lib" "$W/"
install -m755 "$HERE/../guest/i2ctrace.sh" "$W/usr/bin/i2ctrace"
[ -n "${TEST_SH:-}" ] && install -m755 "$TEST_SH" "$W/test.sh"

cat > "$W/init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts
echo "VMTEST: INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
arg() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ROOT=$(arg root)
for m in virtio_pci virtio_blk virtio_console virtio-rng; do modprobe -q $m; done
if [ -n "$ROOT" ]; then   # systemd mode: mount the ext4 image and hand over to its /sbin/init
  modprobe -q crc32c_generic; modprobe -q ext4
  for i in $(seq 50); do [ -b "$ROOT" ] && break; sleep 0.1; done
  mount -o rw "$ROOT" /newroot || { echo "VMTEST: cannot mount $ROOT"; exec sh; }
  umount /dev/pts; mount --move /dev /newroot/dev; mount --move /proc /newroot/proc; mount --move /sys /newroot/sys
  I=$(arg init)
  exec switch_root /newroot "${I:-/sbin/init}"
fi
# --- test mode ---
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
modprobe -q 9pnet_virtio; modprobe -q 9p
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare /mnt/host 2>/dev/null && echo "VMTEST: 9p share mounted"
modprobe i2c-dev
ifconfig lo 127.0.0.1 up 2>/dev/null
hostname testvm
T=""; [ -x /test.sh ] && T=/test.sh; [ -x /mnt/host/run.sh ] && T=/mnt/host/run.sh
C=$(arg test)
echo "VMTEST: START uptime=$(cut -d' ' -f1 /proc/uptime)"
if grep -q rdshell /proc/cmdline; then exec setsid cttyhack sh; fi
SHARED=""; grep -q " /mnt/host " /proc/mounts && SHARED=1 && mkdir -p /mnt/host/out
rc=125
if [ -n "$C" ]; then sh -c "$(echo "$C" | tr ',' ' ')"; rc=$?
elif [ -n "$T" ]; then
  if [ -n "$SHARED" ]; then { $T; echo $? > /tmp/rc; } 2>&1 | tee /mnt/host/out/run.log; rc=$(cat /tmp/rc)
  else $T; rc=$?; fi
else echo "VMTEST: no test (/mnt/host/run.sh, /test.sh or test=...)"; fi
echo "VMTEST: DONE rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
[ -n "$SHARED" ] && { echo $rc > /mnt/host/out/rc; sync; umount /mnt/host; }
sync; poweroff -f
EOF
chmod +x "$W/init"

OUT=$WORK/initramfs.cpio.gz
(cd "$W" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT.new"
mv "$OUT.new" "$OUT"
log "OK: $OUT ($(du -h "$OUT" | cut -f1))"
