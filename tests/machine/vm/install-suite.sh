#!/usr/bin/env bash
# vm/install-suite.sh — install the acpigate suite into a root directory the way the Yocto
# recipe (yocto/meta-acpigate) installs it on a BMC:
#   /usr/bin/acpigate                         the multi-call binary
#   /usr/libexec/acpigate/<applet>            symlinks to it, one per applet in this build
#   /usr/lib/systemd/system/                  units/*.service, units/*.target
#   /usr/share/dbus-1/system.d/               units/*.conf (D-Bus policy)
# and enables the units whose [Install] section says so (what SYSTEMD_SERVICE does at image
# build time), with `systemctl --root`.
# usage: vm/install-suite.sh ROOT ACPIGATE_BIN [UNITS_DIR]   (UNITS_DIR default <repo>/units)
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "install-suite: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ROOT=${1:?usage: install-suite.sh ROOT ACPIGATE_BIN [UNITS_DIR]}
BIN=${2:?usage: install-suite.sh ROOT ACPIGATE_BIN [UNITS_DIR]}
UNITS=${3:-$HERE/../../../units}
[ -d "$ROOT/usr" ] || die "$ROOT does not look like a root filesystem"
[ -x "$BIN" ] || die "no executable $BIN (cargo build --release -p acpigate --all-features)"
[ -d "$UNITS" ] || die "no units directory $UNITS"

# The binary lists its applets when run without one (and exits 2).
applets=$("$BIN" 2>&1 | sed -n 's/^applets in this build: *//p' || true)
[ -n "$applets" ] || die "$BIN did not list its applets"

install -D -m 0755 "$BIN" "$ROOT/usr/bin/acpigate"
install -d "$ROOT/usr/libexec/acpigate"
for a in $applets; do ln -sfn ../../bin/acpigate "$ROOT/usr/libexec/acpigate/$a"; done
log "binary $(stat -c %s "$BIN") bytes, applets: $applets"

install -d "$ROOT/usr/lib/systemd/system" "$ROOT/usr/share/dbus-1/system.d"
units=()
for f in "$UNITS"/*.service "$UNITS"/*.target "$UNITS"/*.socket "$UNITS"/*.timer; do
  [ -f "$f" ] || continue
  install -m 0644 "$f" "$ROOT/usr/lib/systemd/system/"
  units+=("$(basename "$f")")
done
for f in "$UNITS"/*.conf; do
  [ -f "$f" ] || continue
  install -m 0644 "$f" "$ROOT/usr/share/dbus-1/system.d/"
done
log "units: ${units[*]:-none}; D-Bus policy: $(cd "$UNITS" && ls ./*.conf 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')"

# Enable what has an [Install] section (units without one are started by others).
enable=()
for u in "${units[@]}"; do
  grep -q '^\[Install\]' "$ROOT/usr/lib/systemd/system/$u" && enable+=("$u")
done
if [ ${#enable[@]} -gt 0 ]; then
  systemctl --root="$ROOT" enable "${enable[@]}" 2>&1 | sed 's/^/install-suite: /' >&2
fi
