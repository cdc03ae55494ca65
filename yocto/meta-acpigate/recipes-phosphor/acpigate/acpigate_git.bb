SUMMARY = "acpigate: host ACPI power state awareness for OpenBMC"
DESCRIPTION = "Rust daemons that track the host's ACPI power state, start per-state \
               systemd targets, keep the BMC off the DIMM SMBus while the host firmware \
               uses it, and answer the matching IPMI commands. One multi-call binary, \
               one package per daemon."
HOMEPAGE = "https://github.com/acpigate/acpigate"
BUGTRACKER = "https://github.com/acpigate/acpigate/issues"
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

PV = "0.1.0+git"

require acpigate-applets.inc
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates externalsrc systemd

# Where the source comes from: the acpigate checkout this layer sits in (the recipe is
# <checkout>/yocto/meta-acpigate/recipes-phosphor/acpigate/). Recipe, crates file and
# Cargo.lock are then always from the same commit, and only the crates listed in
# acpigate-crates.inc are fetched. To build another checkout, set
# EXTERNALSRC:pn-acpigate = "/path/to/acpigate"; to fetch a pinned commit from git instead,
# see README.md ("Where the source comes from").
EXTERNALSRC ?= "${@os.path.normpath(os.path.join(os.path.dirname(d.getVar('FILE')), '..', '..', '..', '..'))}"
EXTERNALSRC_BUILD ?= "${WORKDIR}/build"

# Build only the multi-call binary, with exactly the applets this image ships: one Cargo
# feature of the acpigate crate per applet, switched on through PACKAGECONFIG.
PACKAGECONFIG ??= "${ACPIGATE_APPLETS}"
PACKAGECONFIG[acpi-state-daemon] = "--features acpi-state-daemon,,"
PACKAGECONFIG[sensor-gate] = "--features sensor-gate,,"
PACKAGECONFIG[ipmi-handlers] = "--features ipmi-handlers,,"
PACKAGECONFIG[ipmi-lan] = "--features ipmi-lan,,"
CARGO_BUILD_FLAGS:append = " --package acpigate --no-default-features"

# The workspace's release profile strips symbols (strip = true) so that developer builds
# show the flash footprint. Here Yocto strips, and keeps the symbols in acpigate-dbg; a
# binary that cargo already stripped would trip the already-stripped QA check and leave -dbg
# empty. Rather than INSANE_SKIP (which only hides the check), cargo is told not to strip.
export CARGO_PROFILE_RELEASE_STRIP = "false"

# The build differs per machine when a machine .conf trims ACPIGATE_APPLETS.
PACKAGE_ARCH = "${MACHINE_ARCH}"

# Per applet: its systemd units (services get enabled, targets are only installed) and its
# D-Bus policy files, all taken from units/ in the source tree.
ACPIGATE_UNITS[acpi-state-daemon] = "acpi-state-daemon.service host-s0-state.target host-s2-state.target host-s5-state.target"
ACPIGATE_DBUS_POLICY[acpi-state-daemon] = "xyz.openbmc_project.Control.Power.ACPIPowerState.conf"
ACPIGATE_UNITS[sensor-gate] = "sensor-gate.service"
ACPIGATE_DBUS_POLICY[sensor-gate] = "xyz.openbmc_project.AcpigateDimmSensor.conf"
ACPIGATE_UNITS[ipmi-handlers] = "ipmi-handlers.service"
ACPIGATE_DBUS_POLICY[ipmi-handlers] = "xyz.openbmc_project.Ipmi.Host.conf"
ACPIGATE_UNITS[ipmi-lan] = "ipmi-lan.service"
ACPIGATE_DBUS_POLICY[ipmi-lan] = ""

def acpigate_flag_files(d, var, applets=None):
    files = []
    for applet in (applets or d.getVar('ACPIGATE_APPLETS') or '').split():
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
    for applet in ${ACPIGATE_APPLETS}; do
        ln -rs ${D}${bindir}/acpigate ${D}${libexecdir}/acpigate/$applet
    done
    for unit in ${@acpigate_flag_files(d, 'ACPIGATE_UNITS')}; do
        install -m 0644 ${S}/units/$unit ${D}${systemd_system_unitdir}/
    done
    for policy in ${@acpigate_flag_files(d, 'ACPIGATE_DBUS_POLICY')}; do
        install -m 0644 ${S}/units/$policy ${D}${datadir}/dbus-1/system.d/
    done
}

# Packages: acpigate (the binary, shared by all) and one acpigate-<applet> per applet with
# its link, units and policy, so an image carries only the daemons it wants. The package of
# an applet left out of ACPIGATE_APPLETS stays empty and is not created.
PACKAGE_BEFORE_PN = "${PN}-acpi-state-daemon ${PN}-sensor-gate ${PN}-ipmi-handlers ${PN}-ipmi-lan"
SYSTEMD_PACKAGES = "${@' '.join('${PN}-' + a for a in (d.getVar('ACPIGATE_APPLETS') or '').split())}"

# What each applet is:
# * acpi-state-daemon: the host ACPI state object, per-state targets, BootProgress. It owns
#   the bus name of Google's acpi-power-state-daemon and ships the same target files.
# * sensor-gate: DIMM temperature sensors over SMBus, read only while the host is settled in
#   S0; fans held at a fixed PWM while the sensors are gated.
# * ipmi-handlers: the IPMI command server (xyz.openbmc_project.Ipmi.Host, method execute)
#   that kcsbridge and LAN front ends call; it takes the bus name of phosphor-host-ipmid.
# * ipmi-lan: RMCP+ (IPMI 2.0 LAN) front end for `ipmitool -I lanplus`, forwarding to
#   whichever Ipmi.Host runs; it takes UDP port 623 like phosphor-ipmi-net (netipmid).
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
RCONFLICTS:${PN}-acpi-state-daemon = "acpi-power-state-daemon"
RCONFLICTS:${PN}-ipmi-handlers = "phosphor-ipmi-host"
RCONFLICTS:${PN}-ipmi-lan = "phosphor-ipmi-net"
RREPLACES:${PN}-acpi-state-daemon = "acpi-power-state-daemon"
