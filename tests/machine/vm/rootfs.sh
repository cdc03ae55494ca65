#!/usr/bin/env bash
# vm/rootfs.sh — build the cached base Debian bookworm rootfs (debootstrap minbase + systemd,
# dbus, udev, kmod, i2c-tools, procps, ipmitool), add the module subset from vm/kernel.sh, i2ctrace, an
# unprivileged user "bmcuser", and a test runner (vmtest.service: once boot has finished it
# runs /mnt/host/run.sh from the 9p share, stores /mnt/host/out/{run.log,rc} and powers off).
# vm/image.sh packs it (plus the installed suite) into the ext4 image the VM boots.
# The rootfs dir is also the lower layer for ns-systemd.sh.
# usage: vm/rootfs.sh [WORKDIR]     (default: $VMTEST_DIR or <repo>/.vmtest; run vm/kernel.sh first)
# out:   WORKDIR/rootfs/; the debootstrap result is kept as CACHE/vm-rootfs-<key>.tar.zst
#        (CACHE: scripts/cache-dir.sh; <key>: a hash of the package list), so a new clone
#        unpacks it (~3 s) instead of running debootstrap again
# env:   DEBIAN_MIRROR (default: this machine's apt source for bookworm), EXTRA_PKGS (comma
#        list), REBUILD=1 (redo debootstrap)
# Runner cmdline flags: vmtest.clean (orderly poweroff, +4 s), vmtest.nopoweroff, vmtest.analyze.
# Time here: ~34 s first run (debootstrap ~33 s; ~94 s under load), ~1 s after. Needs root.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "rootfs: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
WORK=$(realpath -m "${1:-${VMTEST_DIR:-$HERE/../../../.vmtest}}")
ROOT=$WORK/rootfs
K=$WORK/kernel
[ -f "$K/kver" ] || die "no kernel in $K: run vm/kernel.sh first (the rootfs gets its modules)"
KVER=$(cat "$K/kver")
PKGS=systemd,systemd-sysv,dbus,udev,kmod,i2c-tools,procps,ipmitool${EXTRA_PKGS:+,$EXTRA_PKGS}
mkdir -p "$WORK"
CACHE=$("$HERE/../../../scripts/cache-dir.sh")
TARBALL=$CACHE/vm-rootfs-$(printf 'bookworm minbase %s' "$PKGS" | sha256sum | cut -c1-16).tar.zst
command -v zstd >/dev/null || die "zstd not installed (apt-get install zstd)"

t0=$(date +%s.%N)
if [ -n "${REBUILD:-}" ] || [ "$(cat "$WORK/rootfs.stamp" 2>/dev/null)" != "$PKGS" ] || [ ! -x "$ROOT/usr/lib/systemd/systemd" ]; then
  MIRROR=$("$HERE/../../../scripts/cross/apt-repo-uri.sh" bookworm) || die "no Debian mirror for bookworm (set DEBIAN_MIRROR)"
  eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy)"
  [ -n "${APT_HTTP_PROXY:-}" ] && [ -z "${http_proxy:-}" ] && export http_proxy=$APT_HTTP_PROXY
  rm -rf "$ROOT" "$WORK/rootfs.stamp"
  if [ -z "${REBUILD:-}" ] && [ -f "$TARBALL" ]; then
    log "unpacking $TARBALL"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf "$TARBALL" ||
      die "cannot unpack $TARBALL (remove it to rebuild)"
  else
    log "debootstrap --variant=minbase --include=$PKGS bookworm $ROOT $MIRROR"
    debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    log "debootstrap: $(echo "$(date +%s.%N) - $t0" | bc) s"
    # Into the cache under a dot-name first (prune leaves those alone), renamed when whole.
    mkdir -p "$CACHE"; part=$(mktemp "$CACHE/.vm-rootfs.XXXXXX")
    tar -C "$ROOT" --zstd --numeric-owner --xattrs --xattrs-include='*' -cpf "$part" . &&
      mv "$part" "$TARBALL" || { rm -f "$part"; log "WARNING: could not cache the rootfs in $CACHE"; }
  fi
  echo "$PKGS" > "$WORK/rootfs.stamp"
else
  log "debootstrap already done ($ROOT)"
fi
[ ! -f "$TARBALL" ] || touch "$TARBALL"    # used: the cache prune keeps it longest
t1=$(date +%s.%N)

# --- configuration (idempotent file writes; only passwd needs chroot) ---
echo testvm > "$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 testvm\n' > "$ROOT/etc/hosts"
chroot "$ROOT" passwd -d root >/dev/null
# an unprivileged account: the D-Bus policy tests run busctl as this user
chroot "$ROOT" id -u bmcuser >/dev/null 2>&1 || chroot "$ROOT" useradd -M -d /nonexistent -s /usr/sbin/nologin bmcuser
cat > "$ROOT/etc/fstab" <<'EOF'
/dev/vda  /          ext4  rw,relatime  0 1
hostshare /mnt/host  9p    trans=virtio,version=9p2000.L,msize=262144,nofail,x-systemd.device-timeout=5s  0 0
EOF
mkdir -p "$ROOT/mnt/host"
: > "$ROOT/etc/machine-id"     # generated (transient) at each boot

# root autologin on the serial console (debugging with vmtest.nopoweroff)
mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d"
cat > "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

# test runner: vmtest.service (in the boot transaction) only spawns the transient unit
# vmtest-body and returns, so boot can finish; vmtest-body waits for is-system-running,
# runs /mnt/host/run.sh, writes /mnt/host/out/{run.log,rc}, prints VMTEST markers, powers off.
cat > "$ROOT/usr/local/sbin/vmtest-run" <<'EOF'
#!/bin/bash
exec > /dev/ttyS0 2>&1
state=$(systemctl is-system-running --wait)
echo "VMTEST: START uptime=$(cut -d' ' -f1 /proc/uptime) system=$state"
mkdir -p /mnt/host/out
if grep -q vmtest.analyze /proc/cmdline; then   # costs ~4 s under TCG
  systemd-analyze > /mnt/host/out/systemd-analyze.txt 2>&1 || true
  systemd-analyze critical-chain > /mnt/host/out/critical-chain.txt 2>&1 || true
  systemd-analyze blame > /mnt/host/out/blame.txt 2>&1 || true
fi
if [ -x /mnt/host/run.sh ]; then
  /mnt/host/run.sh 2>&1 | tee /mnt/host/out/run.log; rc=${PIPESTATUS[0]}
else
  echo "VMTEST: no /mnt/host/run.sh"; rc=125
fi
echo "$rc" > /mnt/host/out/rc
echo "VMTEST: DONE rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
grep -q vmtest.nopoweroff /proc/cmdline && exit 0
if grep -q vmtest.clean /proc/cmdline; then systemctl --no-block poweroff; else systemctl -ff poweroff; fi
EOF
chmod +x "$ROOT/usr/local/sbin/vmtest-run"
cat > "$ROOT/etc/systemd/system/vmtest.service" <<'EOF'
[Unit]
Description=Spawn the host-provided integration test (runs once boot has finished)
After=multi-user.target
RequiresMountsFor=/mnt/host

[Service]
Type=oneshot
ExecStart=/usr/bin/systemd-run --no-block --unit=vmtest-body /usr/local/sbin/vmtest-run

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/vmtest.service "$ROOT/etc/systemd/system/multi-user.target.wants/vmtest.service"
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  rm -f "$ROOT/etc/systemd/system/timers.target.wants/$u"
done
install -m755 "$HERE/../guest/i2ctrace.sh" "$ROOT/usr/local/bin/i2ctrace"

# kernel modules (i2c-dev loaded at boot so /dev/i2c-N appear with the adapter)
rm -rf "$ROOT/lib/modules"; mkdir -p "$ROOT/lib/modules"
cp -a "$K/modules/lib/modules/$KVER" "$ROOT/lib/modules/"
echo i2c-dev > "$ROOT/etc/modules-load.d/i2c-dev.conf"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*_Packages
t2=$(date +%s.%N)
log "configure: $(echo "$t2 - $t1" | bc) s"

log "OK: $ROOT ($(du -sh "$ROOT" | cut -f1), kernel modules $KVER); pack it with vm/image.sh"
