#!/usr/bin/env bash
# run.sh — the machine tier from the host: build (or reuse) the cached VM pieces, pack an
# image with the suite installed as the Yocto recipe installs it, boot it once under qemu TCG
# with systemd as PID 1 and run guest/scenarios.sh inside. Exit status = failed checks
# (0 = pass; 124 timeout, 125 the guest wrote no result, 2 setup error).
# usage: tests/machine/run.sh -b ACPIGATE_BIN -p PLATFORM_BIN [-w WORKDIR] [-t SECS] [-v]
#        tests/machine/run.sh -P [-w WORKDIR]   only prepare the cached pieces (kernel,
#                                                initramfs, rootfs), e.g. while cargo builds
#   -b  the release multi-call binary (cargo build --release -p acpigate --all-features)
#   -p  the simulated chassis power service (cargo build -p acpigate-sim --bin machine-platform)
#   -w  cache + work dir (default $VMTEST_DIR or <repo>/.vmtest)   -t  VM timeout (default 480)
#   -v  show the VM console while it runs
# Needs root (debootstrap, overlay mount) and the host packages listed in README.md.
# Time here: ~2 min the first time (debootstrap), then ~45 s (image ~3 s, boot + scenarios).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "machine: $*" >&2; }
die() { log "ERROR: $*"; exit 2; }

WORK=${VMTEST_DIR:-$HERE/../../.vmtest}; BIN=""; PLAT=""; TIMEOUT=480; VERBOSE=(); PREPARE=""
while getopts "b:p:w:t:vP" o; do case $o in
  b) BIN=$OPTARG;; p) PLAT=$OPTARG;; w) WORK=$OPTARG;; t) TIMEOUT=$OPTARG;; v) VERBOSE=(-v);;
  P) PREPARE=1;;
  *) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2;; esac; done
[ -n "$PREPARE" ] || { [ -n "$BIN" ] && [ -n "$PLAT" ]; } || { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" >&2; exit 2; }
WORK=$(realpath -m "$WORK"); export VMTEST_DIR=$WORK

step() { local t; t=$(date +%s.%N); "$@"; log "$(basename "$1") took $(echo "$(date +%s.%N) - $t" | bc) s"; }
step "$HERE/vm/kernel.sh" "$WORK"
step "$HERE/vm/initramfs.sh" "$WORK"
step "$HERE/vm/rootfs.sh" "$WORK"
[ -z "$PREPARE" ] || exit 0
BIN=$(realpath "$BIN") || die "no binary $BIN"; PLAT=$(realpath "$PLAT") || die "no binary $PLAT"
step "$HERE/vm/image.sh" -w "$WORK" -b "$BIN" -p "$PLAT"

SHARE=$WORK/share
rm -rf "$SHARE"; mkdir -p "$SHARE/out"
install -m 0755 "$HERE/guest/scenarios.sh" "$SHARE/run.sh"
set +e
"$HERE/vm/boot-systemd.sh" -w "$WORK" -s "$SHARE" -m -t "$TIMEOUT" "${VERBOSE[@]}"
rc=$?
set -e
if [ -f "$SHARE/out/run.log" ] && [ ${#VERBOSE[@]} -eq 0 ]; then
  log "scenario output (guest):"; cat "$SHARE/out/run.log"
fi
for f in "$SHARE"/out/security-*.txt; do
  [ -f "$f" ] || continue
  log "$(basename "$f" .txt | sed 's/^security-//'): systemd-analyze security, the settings that add exposure:"
  # rows not marked ✓ are the ones that cost exposure; the last line is the overall figure
  grep -v '^ *✓' "$f" | sed 's/^/    /'
done
# CI removes the work dir when the run ends: the log must hold what a failure needs.
if [ "$rc" != 0 ] && [ -f "$SHARE/out/serial.log" ] && [ ${#VERBOSE[@]} -eq 0 ]; then
  log "last 60 lines of the VM console:"; tail -n 60 "$SHARE/out/serial.log" | sed 's/^/    /' >&2
fi
# Last, where a log excerpt that keeps only the tail still shows them: the failed checks.
if [ "$rc" != 0 ] && [ -f "$SHARE/out/run.log" ]; then
  log "failed checks:"; grep -E '(^|[] ])FAIL: ' "$SHARE/out/run.log" | sed 's/^/    /' >&2 || log "    (none recorded: the scenario did not finish)"
fi
log "result: rc=$rc (serial log $SHARE/out/serial.log, trace $SHARE/out/trace.txt)"
exit "$rc"
