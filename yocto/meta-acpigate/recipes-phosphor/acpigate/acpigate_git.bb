SUMMARY = "acpigate: host ACPI power state awareness for OpenBMC"
DESCRIPTION = "Rust daemons that track the host's ACPI power state, start per-state \
               systemd targets, keep the BMC off the DIMM SMBus while the host firmware \
               uses it, and answer the matching IPMI commands. One multi-call binary, \
               one package per daemon."
SECTION = "bmc"
# --- begin: written by `cargo xtask licences`; CI checks it. Do not edit. ---
# The binary is our code (Apache-2.0, the tree's LICENSE) statically linked with the
# crates.io crates it depends on: each crate's licence expression (SPDX from its
# Cargo.toml, here in BitBake syntax) is one term. Build-dependencies and proc-macro
# crates only run on the build host while compiling, so they are not listed.
LICENSE = "Apache-2.0 & \
           ((Apache-2.0 | MIT) & Unicode-3.0) & \
           (Apache-2.0 | Apache-2.0-with-LLVM-exception | MIT) & \
           (Apache-2.0 | MIT) & \
           (MIT | Unlicense) & \
           BSD-3-Clause & \
           MIT"
# Our LICENSE file, then oe-core's text of each licence named above (the crates' own
# copies are in their crate archives).
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57 \
                    file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10 \
                    file://${COMMON_LICENSE_DIR}/Apache-2.0-with-LLVM-exception;md5=0bcd48c3bdfef0c9d9fd17726e4b7dab \
                    file://${COMMON_LICENSE_DIR}/BSD-3-Clause;md5=550794465ba0ec5312d6919e203a55f9 \
                    file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302 \
                    file://${COMMON_LICENSE_DIR}/Unicode-3.0;md5=548c7e11b6a9486e064814cf1c708e5b \
                    file://${COMMON_LICENSE_DIR}/Unlicense;md5=7246f848faa4e9c9fc0ea91122d6e680"
# --- end: written by `cargo xtask licences` ---

CVE_PRODUCT = "acpigate"

# A "+" in PV makes the fetcher append the git revision.
PV = "0.1.0+git"

# Where the source comes from (README.md, "Where the source comes from").
#
# ACPIGATE_GIT_URI: the acpigate git repository your team builds from, as a BitBake git URL
# with its branch, e.g. "git://git.example.com/bmc/acpigate.git;protocol=https;branch=main".
# Set it in your distro, machine or local.conf; there is no default, so nothing is fetched
# from a place you did not choose. Without it the recipe is skipped with a message saying so.
ACPIGATE_GIT_URI ??= ""
# Assigned before the crates file is required: it adds every crate with +=.
SRC_URI = "${ACPIGATE_GIT_URI}"

require acpigate-applets.inc
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates systemd

# SRCREV: by default the commit this layer is checked out at. The crates file next to this
# recipe lists the crates of that commit's Cargo.lock, so recipe, crates and source always
# match; that commit must be in ACPIGATE_GIT_URI (push it, or mirror it there). Set SRCREV
# (with the same commit's layer) to build another one.
SRCREV ?= "${@acpigate_layer_revision(d)}"

def acpigate_layer_revision(d):
    import bb.process
    here = os.path.dirname(d.getVar('FILE'))
    def git(*args):
        out, _ = bb.process.run(['git'] + list(args), cwd=here)
        return out.strip()
    try:
        rev = git('rev-parse', '--verify', '-q', 'HEAD')
        # Parse again when the checkout moves: HEAD, the branch it names, packed refs.
        watch = git('rev-parse', '--path-format=absolute', '--git-path', 'HEAD',
                    '--git-path', 'packed-refs').split()
    except (bb.process.ExecutionError, bb.process.NotFoundError):
        return 'INVALID'
    try:
        branch = git('symbolic-ref', '-q', 'HEAD')
        watch.append(git('rev-parse', '--path-format=absolute', '--git-path', branch))
    except bb.process.ExecutionError:
        pass  # a detached HEAD names the commit itself
    for p in watch:
        bb.parse.mark_dependency(d, p)
    return rev

# Without a source to fetch, the recipe is skipped, with the reason, rather than failing
# every parse of a tree that has the layer but does not build acpigate yet.
SKIP_RECIPE[acpigate] ?= "${@acpigate_skip_reason(d)}"

def acpigate_skip_reason(d):
    if d.getVar('EXTERNALSRC'):
        return ''
    if not d.getVar('ACPIGATE_GIT_URI'):
        return ('ACPIGATE_GIT_URI is not set: set it to the acpigate git repository to build '
                'from, or build a local checkout with externalsrc or devtool '
                '(meta-acpigate README.md, "Where the source comes from")')
    if d.getVar('SRCREV') == 'INVALID':
        return ('this layer is not a git checkout: set SRCREV:pn-acpigate to the acpigate '
                'commit this layer belongs to')
    return ''

# Developer opt-in: build a local checkout instead (INHERIT += "externalsrc" and
# EXTERNALSRC:pn-acpigate = "/path/to/acpigate", or `devtool modify acpigate`). Cargo's
# target directory then stays out of the checkout, and paths under the checkout, which lies
# outside WORKDIR where rust-common.bbclass remaps, are remapped in the binary the same way.
EXTERNALSRC_BUILD ?= "${WORKDIR}/build"
RUSTFLAGS:append = "${@' --remap-path-prefix=%s=%s' % (d.getVar('S'), d.getVar('TARGET_DBGSRC_DIR')) if d.getVar('EXTERNALSRC') else ''}"

# Build only the multi-call binary, with exactly the applets this image ships: one Cargo
# feature of the acpigate crate per applet, switched on through PACKAGECONFIG.
PACKAGECONFIG ??= "${ACPIGATE_APPLETS}"
PACKAGECONFIG[acpi-state-daemon] = "--features acpi-state-daemon,,"
PACKAGECONFIG[sensor-gate] = "--features sensor-gate,,"
PACKAGECONFIG[ipmi-handlers] = "--features ipmi-handlers,,"
PACKAGECONFIG[ipmi-lan] = "--features ipmi-lan,,"
# The applets this build compiles and packages: those in PACKAGECONFIG. So
# PACKAGECONFIG:remove:pn-acpigate = "<applet>" drops the Cargo feature, the link, the units
# and the package alike (ACPIGATE_APPLETS:remove does the same and also drops it from
# packagegroup-acpigate).
ACPIGATE_BUILT = "${@' '.join(a for a in d.getVar('ACPIGATE_APPLETS_ALL').split() if bb.utils.contains('PACKAGECONFIG', a, True, False, d))}"
CARGO_BUILD_FLAGS:append = " --package acpigate --no-default-features"

# The workspace's release profile strips symbols (strip = true) so that developer builds
# show the flash footprint. Here Yocto strips, and keeps the symbols in acpigate-dbg; a
# binary that cargo already stripped would trip the already-stripped QA check and leave -dbg
# empty. Rather than INSANE_SKIP (which only hides the check), cargo is told not to strip.
export CARGO_PROFILE_RELEASE_STRIP = "false"

# The build differs per machine when a machine .conf trims ACPIGATE_APPLETS.
PACKAGE_ARCH = "${MACHINE_ARCH}"

# Per applet: its systemd units (services get enabled, targets are only installed), drop-ins
# for upstream units it takes over from (<unit>.d/<file>), and its D-Bus policy files, all
# taken from units/ in the source tree.
ACPIGATE_UNITS[acpi-state-daemon] = "acpi-state-daemon.service host-s0-state.target host-s2-state.target host-s5-state.target"
ACPIGATE_DBUS_POLICY[acpi-state-daemon] = "xyz.openbmc_project.Control.Power.ACPIPowerState.conf"
ACPIGATE_UNITS[sensor-gate] = "sensor-gate.service"
ACPIGATE_DBUS_POLICY[sensor-gate] = "xyz.openbmc_project.AcpigateDimmSensor.conf"
ACPIGATE_UNITS[ipmi-handlers] = "ipmi-handlers.service phosphor-ipmi-host.service.d/90-acpigate-ipmi-handlers.conf xyz.openbmc_project.Ipmi.Internal.SoftPowerOff.service.d/90-acpigate-ipmi-handlers.conf"
ACPIGATE_DBUS_POLICY[ipmi-handlers] = "xyz.openbmc_project.Ipmi.Host.conf"
ACPIGATE_UNITS[ipmi-lan] = "ipmi-lan.service phosphor-ipmi-net@.socket.d/90-acpigate-ipmi-lan.conf phosphor-ipmi-net@.service.d/90-acpigate-ipmi-lan.conf"
ACPIGATE_DBUS_POLICY[ipmi-lan] = ""

def acpigate_flag_files(d, var, applets=None):
    files = []
    for applet in (applets or d.getVar('ACPIGATE_BUILT') or '').split():
        files.extend((d.getVarFlag(var, applet) or '').split())
    return ' '.join(files)

def acpigate_package_files(d, applet):
    files = ['${libexecdir}/acpigate/' + applet]
    files += ['${systemd_system_unitdir}/' + u for u in acpigate_flag_files(d, 'ACPIGATE_UNITS', applet).split()]
    files += ['${datadir}/dbus-1/system.d/' + p for p in acpigate_flag_files(d, 'ACPIGATE_DBUS_POLICY', applet).split()]
    return ' '.join(files)

do_install() {
    install -d ${D}${bindir} ${D}${libexecdir}/acpigate ${D}${systemd_system_unitdir} \
        ${D}${datadir}/dbus-1/system.d
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/acpigate ${D}${bindir}/acpigate
    # One link per applet: the binary runs the applet it is started as (argv[0]), so the
    # units' ExecStart=/usr/libexec/acpigate/<applet> needs no arguments.
    for applet in ${ACPIGATE_BUILT}; do
        ln -rs ${D}${bindir}/acpigate ${D}${libexecdir}/acpigate/$applet
    done
    # A name with a directory (phosphor-ipmi-host.service.d/…) is a drop-in for another
    # package's unit and keeps its directory.
    for unit in ${@acpigate_flag_files(d, 'ACPIGATE_UNITS')}; do
        install -D -m 0644 ${S}/units/$unit ${D}${systemd_system_unitdir}/$unit
    done
    for policy in ${@acpigate_flag_files(d, 'ACPIGATE_DBUS_POLICY')}; do
        install -m 0644 ${S}/units/$policy ${D}${datadir}/dbus-1/system.d/
    done
}

# Packages: acpigate (the binary, shared by all) and one acpigate-<applet> per applet with
# its link, units and policy, so an image carries only the daemons it wants. The package of
# an applet left out of the build (ACPIGATE_BUILT) stays empty and is not created.
PACKAGE_BEFORE_PN = "${PN}-acpi-state-daemon ${PN}-sensor-gate ${PN}-ipmi-handlers ${PN}-ipmi-lan"
SYSTEMD_PACKAGES = "${@' '.join('${PN}-' + a for a in (d.getVar('ACPIGATE_BUILT') or '').split())}"

# What each applet is:
# * acpi-state-daemon: the host ACPI state object, per-state targets, BootProgress. It owns
#   the bus name of Google's acpi-power-state-daemon and ships the same target files.
# * sensor-gate: DIMM temperature sensors over SMBus, read only while the host is settled in
#   S0; fans held at a fixed PWM while the sensors are gated.
# * ipmi-handlers: the IPMI command server (xyz.openbmc_project.Ipmi.Host, method execute)
#   that kcsbridge and LAN front ends call; it takes the bus name of phosphor-host-ipmid,
#   and its drop-ins keep ipmid and SoftPowerOff from starting.
# * ipmi-lan: RMCP+ (IPMI 2.0 LAN) front end for `ipmitool -I lanplus`, forwarding to
#   whichever Ipmi.Host runs; it takes UDP port 623 like phosphor-ipmi-net (netipmid), and
#   its drop-ins keep every netipmid instance from starting.
#   It starts only once /etc/acpigate/ipmi-lan-users.json exists (no built-in users).
FILES:${PN}-acpi-state-daemon += "${@acpigate_package_files(d, 'acpi-state-daemon')}"
FILES:${PN}-sensor-gate += "${@acpigate_package_files(d, 'sensor-gate')}"
FILES:${PN}-ipmi-handlers += "${@acpigate_package_files(d, 'ipmi-handlers')}"
FILES:${PN}-ipmi-lan += "${@acpigate_package_files(d, 'ipmi-lan')}"
SYSTEMD_SERVICE:${PN}-acpi-state-daemon = "acpi-state-daemon.service"
SYSTEMD_SERVICE:${PN}-sensor-gate = "sensor-gate.service"
SYSTEMD_SERVICE:${PN}-ipmi-handlers = "ipmi-handlers.service"
SYSTEMD_SERVICE:${PN}-ipmi-lan = "ipmi-lan.service"
RDEPENDS:${PN}-acpi-state-daemon = "${PN}"
RDEPENDS:${PN}-sensor-gate = "${PN}"
RDEPENDS:${PN}-ipmi-handlers = "${PN}"
RDEPENDS:${PN}-ipmi-lan = "${PN}"
# Only Google's acpi-power-state-daemon truly cannot be installed beside us: it ships
# host-s0-state.target and host-s5-state.target at the same paths and owns the same bus name.
# phosphor-ipmi-host and phosphor-ipmi-net are no package conflict: other packages link
# their libraries (netipmid, pid-control's IPMI handlers), so they end up in most images. What
# cannot run twice (the Ipmi.Host owner, the UDP 623 listener) is settled by the drop-ins
# in ACPIGATE_UNITS above, which keep ipmid and netipmid from starting where our applet is
# installed. `cargo xtask test oelint` checks the documented images for such clashes.
RCONFLICTS:${PN}-acpi-state-daemon = "acpi-power-state-daemon"
RREPLACES:${PN}-acpi-state-daemon = "acpi-power-state-daemon"
