#!/usr/bin/env bash
# cross-build.sh — build acpigate for x86_64, the AST2600 (armv7-unknown-linux-gnueabihf)
# and the AST2500 (arm-unknown-linux-gnueabi, ARMv6 soft-float, -Zbuild-std), print sizes.
# The logic lives in `cargo xtask cross` (xtask/src/cross.rs); this is the shell entry for
# people who expect one next to cross-setup.sh.
# usage: scripts/cross/cross-build.sh [-t] [TARGET...]
#   -t   also run the pure crates' tests under qemu-arm and one daemon on a private bus
# env:   CARGO_TARGET_DIR (cross builds go to $CARGO_TARGET_DIR/cross and …/cross-build-std)
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/../.."
args=()
if [ "${1:-}" = -t ]; then args+=(--test --daemon); shift; fi
exec cargo xtask cross "${args[@]}" "$@"
