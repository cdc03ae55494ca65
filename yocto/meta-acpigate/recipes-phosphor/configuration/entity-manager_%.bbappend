# acpigate: keep entity-manager's FruDevice off the DIMM buses. FruDevice probes every address
# 0x03-0x77 on each bus its blocklist does not hold as a whole, at start and at host power-on,
# i.e. while the host firmware reads the DIMMs' SPD: the collision acpigate's gate exists to
# prevent, from a master the gate cannot reach.
#
# The machine sets the DIMM buses (the N of /dev/i2c-N), e.g. in its machine .conf:
#   ACPIGATE_FRUDEVICE_BLOCKED_BUSES = "3"
# They are merged into whatever blacklist.json the recipe and the machine layers install (a
# do_install postfunc: after every do_install:append, whatever the layer order); the file is
# never replaced. Left empty (the default), it adds nothing to entity-manager: no file
# fetched, no function run, the installed files exactly as without this layer.
ACPIGATE_FRUDEVICE_BLOCKED_BUSES ??= ""
ACPIGATE_FRUDEVICE_MERGE = "${@'1' if d.getVar('ACPIGATE_FRUDEVICE_BLOCKED_BUSES').strip() else ''}"

# (FILESEXTRAPATHS is outside the task signatures.)
FILESEXTRAPATHS:prepend := "${THISDIR}/entity-manager:"
# The blank is inside the expression: empty, SRC_URI stays exactly as it was.
# nooelint: oelint.vars.listappend
SRC_URI:append = "${@' file://acpigate-frudevice-blocklist.py' if d.getVar('ACPIGATE_FRUDEVICE_MERGE') else ''}"
do_install[postfuncs] .= "${@' acpigate_frudevice_blocklist' if d.getVar('ACPIGATE_FRUDEVICE_MERGE') else ''}"

acpigate_frudevice_blocklist() {
    python3 ${UNPACKDIR}/acpigate-frudevice-blocklist.py \
        ${D}${datadir}/${BPN}/blacklist.json ${ACPIGATE_FRUDEVICE_BLOCKED_BUSES}
}
acpigate_frudevice_blocklist[doc] = "Merge ACPIGATE_FRUDEVICE_BLOCKED_BUSES into FruDevice's blacklist.json"
