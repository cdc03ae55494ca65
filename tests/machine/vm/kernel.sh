#!/usr/bin/env bash
# vm/kernel.sh — fetch the standard Debian amd64 kernel package (apt-get download; not the
# -cloud one, which has no I2C), extract the uncompressed vmlinux (boots via PVH, no
# decompressor under TCG) and a kernel-module subset (+ deps, depmod) for the test VMs.
# usage: vm/kernel.sh [WORKDIR]        (default: $VMTEST_DIR or <repo>/.vmtest)
# out:   WORKDIR/kernel -> CACHE/vm-kernel-<key>/{vmlinux,kver,config,modules/lib/modules/<kver>/}
#        CACHE is the project's shared cache (scripts/cache-dir.sh), <key> a hash of the
#        package, its version and the module list: every clone reuses one extract.
# env:   KERNEL_PKG   package (default: what linux-image-amd64 depends on, e.g. linux-image-6.1.0-NN-amd64)
#        KMODS        module list (default below); KMODS_EXTRA  appended (e.g. "ipmi_si ipmi_devintf")
# Idempotent (stamp). Time here: 9-24 s first run (70 MB download ~1 s), ~1 s after (any clone).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "kernel: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=$(realpath -m "${1:-${VMTEST_DIR:-$HERE/../../../.vmtest}}")
K=$WORK/kernel
# No jc42/at24/ee1004: jc42 auto-detects a stub chip at 0x18, binds it (userspace then gets
# EBUSY) and its detection is itself bus traffic that would pollute the gate trace.
KMODS=${KMODS:-i2c-dev i2c-stub i2c-smbus jc42 at24 virtio_pci virtio_blk virtio_console virtio-rng 9p 9pnet_virtio ext4 crc32c_generic crc32c-intel autofs4}
KMODS="$KMODS ${KMODS_EXTRA:-}"
for c in apt-get apt-cache dpkg-deb modinfo depmod python3; do command -v $c >/dev/null || die "$c not found"; done

PKG=${KERNEL_PKG:-}
if [ -z "$PKG" ]; then
  PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  [ -n "$PKG" ] || die "cannot resolve linux-image-amd64 (run apt-get update, or set KERNEL_PKG)"
fi
case $PKG in *-cloud-amd64) die "$PKG is the cloud kernel: it has no I2C (no i2c-dev/i2c-stub)";; esac
VER=$(apt-cache policy "$PKG" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
[ -n "$VER" ] && [ "$VER" != "(none)" ] || die "no candidate version for $PKG"
stamp="$PKG $VER $(echo $KMODS | tr ' ' '\n' | sort -u | tr '\n' ' ')"
CACHE=$("$HERE/../../../scripts/cache-dir.sh")
KC=$CACHE/vm-kernel-$(printf %s "$stamp" | sha256sum | cut -c1-16)
use_cached() {  # point WORKDIR/kernel at the cache entry and mark it as used
  mkdir -p "$WORK"
  [ -L "$K" ] || rm -rf "$K"        # a directory from before the cache
  ln -sfn "$KC" "$K"; touch "$KC"
}
if [ -f "$KC/stamp" ] && [ "$(cat "$KC/stamp")" = "$stamp" ] && [ -f "$KC/vmlinux" ] && [ -f "$KC/kver" ]; then
  log "up to date: $PKG $VER in $KC"; use_cached; exit 0
fi

# Built under a dot-name (the cache prune leaves those alone) and renamed when complete, so a
# run that dies half-way never leaves an entry that looks finished.
mkdir -p "$CACHE"
B=$(mktemp -d "$CACHE/.vm-kernel.XXXXXX")
tmp=$B/x; mkdir -p "$tmp"; trap 'rm -rf "$B"' EXIT
log "apt-get download $PKG=$VER"
(cd "$B" && apt-get -q -o APT::Sandbox::User=root download "$PKG=$VER") || die "apt-get download $PKG failed"
deb=$(ls "$B/${PKG}_"*"_amd64.deb" | head -1)
K=$B
log "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$tmp"
KVER=$(ls "$tmp/lib/modules" | head -1); [ -n "$KVER" ] || die "no /lib/modules in $deb"
SRC=$tmp/lib/modules/$KVER
cp "$tmp/boot/config-$KVER" "$K/config"

log "extracting the uncompressed vmlinux (PVH entry) from vmlinuz-$KVER"
python3 - "$tmp/boot/vmlinuz-$KVER" "$K/vmlinux.new" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
off = data.find(b"\xfd7zXZ\x00")
if off < 0:
    sys.exit("no XZ payload in %s (only XZ-compressed kernels are supported)" % sys.argv[1])
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
if out[:4] != b"\x7fELF":
    sys.exit("decompressed payload is not an ELF image")
open(sys.argv[2], "wb").write(out)
PY
if command -v readelf >/dev/null && ! readelf -n "$K/vmlinux.new" | grep -q 'Xen.*0x00000012'; then
  log "WARNING: vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); qemu -kernel will refuse it"
fi
mv "$K/vmlinux.new" "$K/vmlinux"

# module subset + dependencies (modinfo depends/softdep), then depmod
log "copying module subset: $KMODS"
M=$K/modules; rm -rf "$M"; out=$M/lib/modules/$KVER; mkdir -p "$out"
declare -A path seen
while IFS= read -r f; do n=$(basename "$f"); n=${n%%.ko*}; path[$n]=$f; path[${n//-/_}]=$f; done \
  < <(find "$SRC/kernel" -name '*.ko*')
builtin() { grep -qE "/(${1}|${1//_/-}|${1//-/_})\.ko" "$SRC/modules.builtin" 2>/dev/null; }
add() { # add NAME [soft]
  local m=${1//-/_} f rel d
  [ -n "${seen[$m]:-}" ] && return 0; seen[$m]=1
  f=${path[$m]:-}
  if [ -z "$f" ]; then builtin "$1" || [ -n "${2:-}" ] || log "WARNING: module $1 not found (and not built in)"; return 0; fi
  rel=${f#"$SRC"/}
  mkdir -p "$out/$(dirname "$rel")"; cp "$f" "$out/$rel"
  for d in $(modinfo -F depends "$f" | tr ',' ' '); do add "$d"; done
  for d in $(modinfo -F softdep "$f" | tr ' ' '\n' | grep -v ':$' || true); do add "$d" soft; done
}
for m in $KMODS; do add "$m"; done
cp "$SRC"/modules.builtin* "$SRC"/modules.order "$out/" 2>/dev/null || true
depmod -b "$M" "$KVER"
echo "$KVER" > "$K/kver"
echo "$stamp" > "$K/stamp"
log "OK: $KVER: vmlinux $(du -h "$K/vmlinux" | cut -f1), $(find "$out" -name '*.ko*' | wc -l) modules ($(du -sh "$out" | cut -f1)) in $KC"
rm -rf "$tmp" "$B"/*.deb
# another run may have finished the same entry meanwhile: keep that one
[ -f "$KC/stamp" ] || rm -rf "$KC"     # a broken entry (removed by hand half-way)
mv -T "$B" "$KC" 2>/dev/null || log "$KC was completed by another run meanwhile; using it"
K=$WORK/kernel; use_cached
