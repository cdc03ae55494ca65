#!/usr/bin/env bash
# vm/install-suite.sh — install the acpigate suite into a root directory the way the Yocto
# recipe (yocto/meta-acpigate) installs it on a BMC:
#   /usr/bin/acpigate                         the multi-call binary
#   /usr/libexec/acpigate/<applet>            symlinks to it, one per applet in this build
#   /usr/lib/systemd/system/                  the applet's units (*.service, *.target) and
#                                             drop-ins for upstream units (<unit>.d/*.conf)
#   /usr/share/dbus-1/system.d/               the applet's D-Bus policy (*.conf)
# taking the lists per applet from the recipe (ACPIGATE_UNITS[applet], ACPIGATE_DBUS_POLICY
# [applet]) for the applets the binary contains, files from units/, and enabling the services
# (what SYSTEMD_SERVICE does at image build time) with `systemctl --root`.
# usage: vm/install-suite.sh ROOT ACPIGATE_BIN [UNITS_DIR]   (UNITS_DIR default <repo>/units)
# env:   RECIPE (default <repo>/yocto/meta-acpigate/recipes-phosphor/acpigate/acpigate_git.bb)
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

# Which units and policy files each applet ships: the recipe's ACPIGATE_UNITS[<applet>] and
# ACPIGATE_DBUS_POLICY[<applet>] flags, so a unit the recipe forgets is missing here too.
RECIPE=${RECIPE:-$HERE/../../../yocto/meta-acpigate/recipes-phosphor/acpigate/acpigate_git.bb}
[ -f "$RECIPE" ] || die "no Yocto recipe $RECIPE (set RECIPE=)"
flag() { sed -n "s/^$1\[$2\] *= *\"\(.*\)\"/\1/p" "$RECIPE"; }
install -d "$ROOT/usr/lib/systemd/system" "$ROOT/usr/share/dbus-1/system.d"
units=(); policies=()
for a in $applets; do
  u=$(flag ACPIGATE_UNITS "$a"); p=$(flag ACPIGATE_DBUS_POLICY "$a")
  # An applet the recipe ships no unit for only gets its link; say so loudly (the scenarios
  # then report what they cannot test).
  [ -n "$u" ] || log "WARNING: the recipe lists no ACPIGATE_UNITS[$a]: applet $a installed without units"
  for f in $u; do
    [ -f "$UNITS/$f" ] || die "the recipe lists $f for $a, but $UNITS/$f does not exist"
    # A name with a directory (<unit>.d/<file>) is a drop-in for an upstream unit.
    install -D -m 0644 "$UNITS/$f" "$ROOT/usr/lib/systemd/system/$f"; units+=("$f")
  done
  for f in $p; do
    [ -f "$UNITS/$f" ] || die "the recipe lists $f for $a, but $UNITS/$f does not exist"
    install -m 0644 "$UNITS/$f" "$ROOT/usr/share/dbus-1/system.d/"; policies+=("$f")
  done
done
log "units: ${units[*]}; D-Bus policy: ${policies[*]:-none}"

# Enable what the recipe's SYSTEMD_SERVICE:${PN}-<applet> names (targets are only installed).
enable=()
for a in $applets; do
  for u in $(sed -n "s/^SYSTEMD_SERVICE:\\\${PN}-$a *= *\"\(.*\)\"/\1/p" "$RECIPE"); do enable+=("$u"); done
done
log "enabled (SYSTEMD_SERVICE): ${enable[*]:-none}"
if [ ${#enable[@]} -gt 0 ]; then
  systemctl --root="$ROOT" enable "${enable[@]}" 2>&1 | sed 's/^/install-suite: /' >&2
fi
