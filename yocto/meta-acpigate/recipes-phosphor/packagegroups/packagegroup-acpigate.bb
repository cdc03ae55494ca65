SUMMARY = "acpigate daemons for an OpenBMC image"
DESCRIPTION = "Every acpigate applet in ACPIGATE_APPLETS, with its systemd units and \
               D-Bus policy. Add it with OBMC_IMAGE_EXTRA_INSTALL:append = \" packagegroup-acpigate\"."
SECTION = "bmc"
LICENSE = "Apache-2.0"

require recipes-phosphor/acpigate/acpigate-applets.inc

inherit packagegroup

# A machine .conf may trim ACPIGATE_APPLETS, so the group is machine-specific.
PACKAGE_ARCH = "${MACHINE_ARCH}"

RDEPENDS:${PN} = "${@' '.join('acpigate-' + a for a in (d.getVar('ACPIGATE_APPLETS') or '').split())}"
