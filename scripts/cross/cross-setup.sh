#!/usr/bin/env bash
# cross-setup.sh — install the Rust cross toolchain for ASPEED BMCs on Debian 12
# (bookworm) x86_64 from Debian packages only (no rustup targets):
#   /usr/bin/rustc + /usr/bin/cargo      rustc-web/cargo-web 1.96 (bookworm-security)
#   armv7-unknown-linux-gnueabihf std    AST2600: prebuilt rlibs extracted from
#                                        libstd-rust-web-dev_<same version>_armhf.deb
#   arm-unknown-linux-gnueabi            AST2500 (ARMv6 soft-float): built on demand with
#                                        RUSTC_BOOTSTRAP=1 -Zbuild-std from rust-web-src
#   arm-linux-gnueabi{hf,}-gcc, qemu-arm, dbus-daemon
# usage: scripts/cross/cross-setup.sh     (root, or sudo available; `cargo xtask cross` runs it)
# env:   CROSS_DIR   download dir (default ${TMPDIR:-/tmp}/acpigate-cross; removed again when empty)
#        DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR  override the archive URIs that are
#        otherwise read from this machine's apt sources (see apt-repo-uri.sh)
# Idempotent. Time: 39.5 s from scratch on a fresh project machine (232 MB of packages),
# ~0.7 s when done, ~5 s to (re)install only the armv7 std.
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
log() { echo "cross-setup: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
APT=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 -y)
[ -z "$SUDO" ] || APT=(sudo "${APT[@]}")
RUSTLIB=/usr/lib/rustlib
T7=armv7-unknown-linux-gnueabihf
WORK=$(realpath -m "${CROSS_DIR:-${TMPDIR:-/tmp}/acpigate-cross}")
[ "$(dpkg --print-architecture)" = amd64 ] || die "needs a Debian amd64 host"
grep -q 'VERSION_CODENAME=bookworm' /etc/os-release || log "WARNING: not Debian 12 (bookworm); continuing"

# proxy from apt's configuration, for the direct downloads below (if any is set)
eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy)"
[ -n "${APT_HTTP_PROXY:-}" ] && [ -z "${http_proxy:-}" ] && export http_proxy=$APT_HTTP_PROXY

# 1. bookworm-security must be an apt source (rustc-web 1.96 lives there)
if ! SEC=$("$HERE/apt-repo-uri.sh" bookworm-security 2>/dev/null); then
  die "no apt source for bookworm-security; add one (or set DEBIAN_SECURITY_MIRROR to its URI)"
fi
if [ -n "${DEBIAN_SECURITY_MIRROR:-}" ] && ! grep -rqs 'bookworm-security' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding $SEC bookworm-security to /etc/apt/sources.list.d/bookworm-security.list"
  echo "deb $SEC bookworm-security main" | $SUDO tee /etc/apt/sources.list.d/bookworm-security.list >/dev/null
  NEED_UPDATE=1
fi

# 2. apt-get update when the lists are missing or older than a day
if [ -n "${NEED_UPDATE:-}" ] || ! ls /var/lib/apt/lists/*_dists_bookworm-security_InRelease >/dev/null 2>&1 ||
   [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -mmin +1440 -print -quit)" ]; then
  log "apt-get update"
  "${APT[@]}" update || log "WARNING: apt-get update reported errors (continuing with the lists it got)"
fi

# 3. host packages (all amd64/all)
PKGS=(rustc-web cargo-web rust-web-src
      gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
      gcc-arm-linux-gnueabi libc6-dev-armel-cross binutils-arm-linux-gnueabihf binutils-arm-linux-gnueabi
      qemu-user dbus-daemon systemd pkg-config file xz-utils curl ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  "${APT[@]}" install --no-install-recommends "${missing[@]}"
fi

# 4. armv7 std: the rlibs of libstd-rust-web-dev_<installed rustc-web version>_armhf.deb.
# No `dpkg --add-architecture armhf`: it would force Multi-Arch:same libs to exact amd64
# versions, and an out-of-sync armhf index makes every later `apt-get update` fail.
VER=$(dpkg-query -W -f='${Version}' rustc-web)
MARK=$RUSTLIB/$T7/.debian-version
if [ "$(cat "$MARK" 2>/dev/null)" != "$VER" ]; then
  mkdir -p "$WORK"
  tmp=$(mktemp -d "$WORK/dl.XXXXXX")
  trap 'rm -rf "$tmp"; rmdir "$WORK" 2>/dev/null || true' EXIT
  deb=""
  # 4a. preferred: apt-get download with a private, armhf-only apt state (fully verified by apt)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  APTX=(apt-get -q -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o Debug::NoLocking=1
        -o APT::Architecture=armhf -o APT::Architectures::=armhf -o APT::Sandbox::User=root
        -o Acquire::Languages=none)
  log "trying apt-get download libstd-rust-web-dev:armhf=$VER (private armhf apt lists)"
  "${APTX[@]}" update >"$tmp/apt-update.log" 2>&1 || true
  if (cd "$tmp" && "${APTX[@]}" download "libstd-rust-web-dev:armhf=$VER" >"$tmp/apt-download.log" 2>&1); then
    deb=$(ls "$tmp"/libstd-rust-web-dev_*_armhf.deb)
    log "downloaded $(basename "$deb") with apt-get"
  else
    # 4b. fallback: fetch the armhf Packages.xz of the suites from the same archive URIs,
    # compare it with the InRelease that apt verified, take the .deb's SHA256 from it
    log "apt-get download failed ($(grep -h -m1 -E '^(E|Err):' "$tmp/apt-update.log" "$tmp/apt-download.log" | tr "\n" " " | cut -c1-200 || true)); falling back to the Packages index"
    sha=""
    for name in bookworm-security bookworm bookworm-updates; do
      base=$("$HERE/apt-repo-uri.sh" "$name" 2>/dev/null) || continue
      curl -fsS -o "$tmp/Packages.xz" "$base/dists/$name/main/binary-armhf/Packages.xz" || continue
      inrel=$(ls /var/lib/apt/lists/*_dists_"${name}"_InRelease 2>/dev/null | head -1 || true)
      want=$( [ -n "$inrel" ] && awk '/^SHA256:/{s=1;next} /^[A-Z]/{s=0} s && $3=="main/binary-armhf/Packages.xz"{print $1}' "$inrel" || true)
      got=$(sha256sum "$tmp/Packages.xz" | cut -d' ' -f1)
      if [ -z "$want" ]; then
        log "WARNING: no verified InRelease for $name; the index gives integrity only"
      elif [ "$want" != "$got" ]; then
        log "WARNING: $name armhf Packages.xz does not match the signed InRelease (mirror out of sync); its checksums give integrity only"
      fi
      entry=$(xz -dc "$tmp/Packages.xz" | awk -v RS= -v v="$VER" '{r="\n" $0 "\n"} index(r, "\nPackage: libstd-rust-web-dev\n") && index(r, "\nVersion: " v "\n")')
      [ -n "$entry" ] || continue
      file=$(sed -n 's/^Filename: //p' <<<"$entry"); sha=$(sed -n 's/^SHA256: //p' <<<"$entry")
      deb="$tmp/$(basename "$file")"
      log "downloading $base/$file"
      curl -fsS -o "$deb" "$base/$file"
      echo "$sha  $deb" | sha256sum -c --quiet - || die "SHA256 mismatch for $deb"
      break
    done
    [ -n "$sha" ] || die "libstd-rust-web-dev $VER (armhf) not found in any suite"
  fi
  log "extracting $T7 std into $RUSTLIB"
  dpkg-deb -x "$deb" "$tmp/x"
  [ -d "$tmp/x/usr/lib/rustlib/$T7/lib" ] || die "$deb has no usr/lib/rustlib/$T7"
  $SUDO rm -rf "${RUSTLIB:?}/$T7"
  $SUDO cp -a "$tmp/x/usr/lib/rustlib/$T7" "$RUSTLIB/"
  echo "$VER" | $SUDO tee "$MARK" >/dev/null
else
  log "armv7 std $VER already installed"
fi

# 5. optional: expose the Debian toolchain to rustup as `+debian` (cargo +debian build ...)
if command -v rustup >/dev/null 2>&1 && ! rustup toolchain list 2>/dev/null | grep -q '^debian'; then
  log "rustup toolchain link debian /usr"
  rustup toolchain link debian /usr >/dev/null 2>&1 || log "WARNING: rustup toolchain link failed (not needed)"
fi

# 6. sanity
/usr/bin/rustc --version
/usr/bin/cargo --version
ls "$RUSTLIB/$T7"/lib/libstd-*.rlib >/dev/null || die "armv7 std missing in $RUSTLIB/$T7"
[ -f "$RUSTLIB/src/rust/library/Cargo.lock" ] || die "rust-web-src missing (needed for -Zbuild-std)"
arm-linux-gnueabihf-gcc --version | head -1
arm-linux-gnueabi-gcc --version | head -1
qemu-arm --version | head -1
log "OK (rustc-web $VER; targets: x86_64, $T7 prebuilt, arm-unknown-linux-gnueabi via -Zbuild-std)"
