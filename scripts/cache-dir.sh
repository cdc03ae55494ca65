#!/usr/bin/env bash
# cache-dir.sh — print the one directory where the test tiers keep what is worth keeping
# between runs and between clones (kernel extracts, the debootstrap rootfs tarball, the
# oelint virtualenv). It is never inside a clone, so a CI run can remove its clone's outputs
# and the next clone still finds these. `cargo xtask test` prunes it to ACPIGATE_CACHE_MAX;
# `cargo xtask clean --all` removes it.
# The rule (this file is its only definition; xtask and the VM scripts ask it):
#   $ACPIGATE_CACHE if set, else $XDG_CACHE_HOME/acpigate-ci if that is set, else
#   /var/cache/acpigate-ci for root, else $HOME/.cache/acpigate-ci.
set -euo pipefail
if [ -n "${ACPIGATE_CACHE:-}" ]; then d=$ACPIGATE_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then d=$XDG_CACHE_HOME/acpigate-ci
elif [ "$(id -u)" = 0 ]; then d=/var/cache/acpigate-ci
else d=${HOME:?neither ACPIGATE_CACHE, XDG_CACHE_HOME nor HOME is set}/.cache/acpigate-ci
fi
realpath -m "$d"
