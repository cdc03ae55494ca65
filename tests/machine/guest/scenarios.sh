#!/bin/bash
# guest/scenarios.sh — the machine-tier scenarios, run INSIDE the test VM (copied to the 9p
# share as run.sh; vmtest-run starts it once systemd reports the boot finished). Everything
# here talks to the real pieces: systemd as PID 1, the system dbus-daemon with the installed
# policy, the installed acpigate binary and units, the kernel's i2c-stub and tracepoints.
# Exit status: the number of failed checks (0 = all passed).
set -uo pipefail
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat LC_ALL=C.UTF-8
OUT=/mnt/host/out

# --- names (the OpenBMC vocabulary, as it appears on the bus) ---
ACPI_SVC=xyz.openbmc_project.Control.Power.ACPIPowerState
ACPI_OBJ=/xyz/openbmc_project/control/host0/acpi_power_state
ACPI_IF=xyz.openbmc_project.Control.Power.ACPIPowerState
ACPI_ENUM=$ACPI_IF.ACPI
PHASE_IF=org.acpigate.HostPhase
CH_SVC=xyz.openbmc_project.State.Chassis
CH_OBJ=/xyz/openbmc_project/state/chassis0
CH_IF=xyz.openbmc_project.State.Chassis
HOST_SVC=xyz.openbmc_project.State.Host
HOST_OBJ=/xyz/openbmc_project/state/host0
BP_IF=xyz.openbmc_project.State.Boot.Progress
DAEMON=acpi-state-daemon.service
SG=sensor-gate.service
SG_SVC=xyz.openbmc_project.AcpigateDimmSensor
SENS=/xyz/openbmc_project/sensors/temperature
VAL_IF=xyz.openbmc_project.Sensor.Value
AV_IF=xyz.openbmc_project.State.Decorator.Availability
GATE_OBJ=/xyz/openbmc_project/acpigate/gate
GATE_IF=org.acpigate.Gate
IPMI=ipmi-handlers.service
IPMI_SVC=xyz.openbmc_project.Ipmi.Host
IPMI_OBJ=/xyz/openbmc_project/Ipmi
IPMI_IF=xyz.openbmc_project.Ipmi.Server
HOOK=operator-s0-hook.service
# the simulated DIMM thermal sensors (i2c-stub chip_addr, see /etc/modprobe.d/i2c-stub.conf)
I2C_BUS=0
DIMMS="0x18 0x19"
DIMM_LIST=$(echo $DIMMS | tr ' ' ',')

FAILS=0; CHECKS=0
T0=$(cut -d' ' -f1 /proc/uptime)
say()  { printf '[%6s] %s\n' "$(awk -v t0="$T0" '{ printf "%.2f", $1 - t0 }' /proc/uptime)" "$*"; }
head_() { echo; say "=== $*"; }
ok()   { CHECKS=$((CHECKS + 1)); say "PASS: $*"; }
bad()  { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); say "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# busctl's "s \"…\"" -> the bare string value
getp() { busctl get-property "$@" 2>/dev/null | sed -n 's/^[a-z]* "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p'; }
acpi()  { getp $ACPI_SVC $ACPI_OBJ $ACPI_IF SysACPIStatus; }
phase() { getp $ACPI_SVC $ACPI_OBJ $PHASE_IF Phase; }
set_acpi() {
  say "busctl set-property … SysACPIStatus $ACPI_ENUM.$1"
  busctl set-property $ACPI_SVC $ACPI_OBJ $ACPI_IF SysACPIStatus s "$ACPI_ENUM.$1"
}
chassis() {
  say "chassis power $1 (RequestedPowerTransition on the simulated chassis service)"
  busctl set-property $CH_SVC $CH_OBJ $CH_IF RequestedPowerTransition s "$CH_IF.Transition.$1"
}
targets() {  # one systemctl call for the three (each process costs ~0.3 s under TCG)
  systemctl is-active host-s0-state.target host-s2-state.target host-s5-state.target |
    awk 'BEGIN { split("s0 s2 s5", n) } { printf "%s%s=%s", (NR > 1 ? " " : ""), n[NR], $1 }'
}
# wait_for SECS 'shell condition' : evaluate the condition every 0.2 s until it holds
wait_for() {
  local n=$(( $1 * 5 ))
  while [ $n -gt 0 ]; do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.2; n=$((n - 1)); done
  eval "$2" >/dev/null 2>&1
}
is_acpi()    { [ "$(acpi)" = "$ACPI_ENUM.$1" ]; }
is_targets() { [ "$(targets)" = "$1" ]; }
unit_prop()  { systemctl show -p "$2" --value "$1"; }
# sensor-gate's D-Bus view of a DIMM sensor (sensor-gate.json: DIMM_A0_Temp at 0x18, A1 at 0x19)
sval()  { getp $SG_SVC $SENS/$1 $VAL_IF Value; }
savail() { getp $SG_SVC $SENS/$1 $AV_IF Available; }
gate()  { getp $SG_SVC $GATE_OBJ $GATE_IF Open; }
sensors() { echo "gate open=$(gate); DIMM_A0_Temp $(sval DIMM_A0_Temp) available=$(savail DIMM_A0_Temp); DIMM_A1_Temp $(sval DIMM_A1_Temp) available=$(savail DIMM_A1_Temp)"; }
# expect_gated: the gate is closed and both sensors show unavailable / NaN
expect_gated() {
  wait_for 20 '[ "$(gate)" = false ] && [ "$(savail DIMM_A0_Temp)" = false ] && [ "$(savail DIMM_A1_Temp)" = false ]'
  local got; got=$(sensors)
  check "gated: $got" [ "$got" = "gate open=false; DIMM_A0_Temp nan available=false; DIMM_A1_Temp nan available=false" ]
}

# expect STATE TARGETS HOOK: wait (10 s) for SysACPIStatus and the target states, then report
expect() {
  local state=$1 want=$2 hook=$3 got
  wait_for 20 'is_acpi "$state"'; got=$(acpi)
  check "SysACPIStatus = $got (want $ACPI_ENUM.$state)" [ "$got" = "$ACPI_ENUM.$state" ]
  wait_for 20 'is_targets "$want"'; got=$(targets)
  check "systemctl is-active: $got (want $want)" [ "$got" = "$want" ]
  wait_for 20 '[ "$(systemctl is-active $HOOK)" = "$hook" ]'; got=$(systemctl is-active $HOOK)
  check "operator unit $HOOK (WantedBy=host-s0-state.target) is $got (want $hook)" [ "$got" = "$hook" ]
  say "Phase = $(phase); BootProgress = $(getp $HOST_SVC $HOST_OBJ $BP_IF BootProgress)"
}

# ---------------------------------------------------------------------------------------
head_ "machine tier: $(uname -r), $(systemctl --version | head -1), system $(systemctl is-system-running)"
say "installed: $(ls -l /usr/bin/acpigate | awk '{print $5, $9}'); applets: $(ls /usr/libexec/acpigate | tr '\n' ' ')"
say "i2c adapters: $(for d in /sys/bus/i2c/devices/i2c-*; do printf '%s=%s ' "${d##*/}" "$(cat $d/name)"; done)"

head_ "boot: the daemon is up (Type=notify) and derives S5 from chassis power Off"
wait_for 20 '[ "$(systemctl is-active $DAEMON)" = active ]'
check "$DAEMON is $(systemctl is-active $DAEMON) (Type=$(unit_prop $DAEMON Type), WatchdogUSec=$(unit_prop $DAEMON WatchdogUSec))" \
  [ "$(systemctl is-active $DAEMON)" = active ]
expect S5_G2 "s0=inactive s2=inactive s5=active" inactive

HAVE_SG=""
if systemctl cat $SG >/dev/null 2>&1; then
  HAVE_SG=1
  wait_for 20 '[ "$(systemctl is-active $SG)" = active ]'
  check "$SG is $(systemctl is-active $SG) (installed, config /etc/acpigate/sensor-gate.json)" [ "$(systemctl is-active $SG)" = active ]
  expect_gated
  # Redfish visibility: the chassis association bmcweb follows, from the config's "board"
  board=$(sed -n 's/.*"board": *"\([^"]*\)".*/\1/p' /etc/acpigate/sensor-gate.json)
  assoc=$(busctl get-property $SG_SVC $SENS/DIMM_A0_Temp xyz.openbmc_project.Association.Definitions Associations 2>&1)
  check "DIMM_A0_Temp Associations: $assoc" [ "$assoc" = "a(sss) 1 \"chassis\" \"all_sensors\" \"$board\"" ]
else
  # the gate scenarios need it: an applet shipped without its unit is a packaging bug
  bad "$SG is not installed (does the recipe list it in ACPIGATE_UNITS[sensor-gate]?); the trace checks fall back to i2cget"
fi

HAVE_IPMI=""
if systemctl cat $IPMI >/dev/null 2>&1; then
  HAVE_IPMI=1
  wait_for 20 '[ "$(systemctl is-active $IPMI)" = active ]'
  check "$IPMI is $(systemctl is-active $IPMI)" [ "$(systemctl is-active $IPMI)" = active ]
else
  # the IPMI and LAN scenarios need it: missing means the recipe stopped installing it
  bad "$IPMI is not installed (recipe ACPIGATE_UNITS[ipmi-handlers]); the IPMI checks cannot run"
fi
HAVE_LAN=""
if [ -n "$HAVE_IPMI" ] && systemctl cat ipmi-lan.service >/dev/null 2>&1; then
  HAVE_LAN=1
  wait_for 20 '[ "$(systemctl is-active ipmi-lan.service)" = active ]'
  check "ipmi-lan.service is $(systemctl is-active ipmi-lan.service) (users file /etc/acpigate/ipmi-lan-users.json, mode $(stat -c %a /etc/acpigate/ipmi-lan-users.json))" \
    [ "$(systemctl is-active ipmi-lan.service)" = active ]
else
  bad "ipmi-lan.service is not installed (recipe ACPIGATE_UNITS[ipmi-lan]); the LAN checks cannot run"
fi
# Upstream's IPMI units, installed and enabled as their packages do (stand-ins with the same
# names, /usr/lib/systemd/system/): the drop-ins acpigate's packages ship must keep ipmid,
# SoftPowerOff and every netipmid instance from starting, on the real systemd, while a unit
# that Wants= ipmid (the KCS bridge) still starts.
if [ -n "$HAVE_IPMI" ]; then
  head_ "beside upstream ipmid, SoftPowerOff, netipmid and a KCS bridge (drop-ins)"
  skipped() {  # skipped UNIT: not running, and its start condition (not a failure) said no
    [ "$(unit_prop "$1" ActiveState)" != active ] && [ "$(unit_prop "$1" ConditionResult)" = no ] &&
      [ "$(unit_prop "$1" Result)" = success ]
  }
  for u in phosphor-ipmi-host.service phosphor-ipmi-net@lo.socket; do
    check "$u (enabled) was skipped at boot: $(unit_prop $u ActiveState), ConditionResult=$(unit_prop $u ConditionResult)" skipped $u
  done
  systemctl status --no-pager phosphor-ipmi-host.service 2>&1 | grep -F 'ConditionPathExists' | sed 's/^ */  /'
  check "the KCS bridge stand-in that Wants= ipmid is $(systemctl is-active machine-kcsbridge.service)" \
    [ "$(systemctl is-active machine-kcsbridge.service)" = active ]
  owner=$(busctl status $IPMI_SVC 2>/dev/null | sed -n 's/^Unit=//p')
  check "xyz.openbmc_project.Ipmi.Host is owned by ${owner:-nobody} (want ipmi-handlers.service)" [ "$owner" = $IPMI ]
  # /proc/net/udp{,6}: local address column "ADDR:PORT" in hex, 623 = 0x026F
  udp=$(cat /proc/net/udp /proc/net/udp6 2>/dev/null | awk '$2 ~ /:026F$/' | wc -l)
  check "exactly one UDP 623 listener ($udp), and it is ipmi-lan's (ipmi-lan.service $(systemctl is-active ipmi-lan.service))" \
    sh -c "[ $udp = 1 ] && [ \"\$(systemctl is-active ipmi-lan.service)\" = active ]"
  SPO=xyz.openbmc_project.Ipmi.Internal.SoftPowerOff.service
  systemctl start $SPO; rc=$?
  check "starting SoftPowerOff (as host shutdown does) succeeds without running it: rc=$rc, ConditionResult=$(unit_prop $SPO ConditionResult)" \
    sh -c "[ $rc = 0 ] && [ \"\$(systemctl show -p ConditionResult --value $SPO)\" = no ]"
fi

# lan ARGS…: the real ipmitool over RMCP+ (cipher suite 17) to the sandboxed LAN front end
lan() { timeout 60 ipmitool -I lanplus -H 127.0.0.1 -U admin -P machine-tier-pw -C 17 "$@"; }
# ipmi NETFN CMD [DATA BYTES…]: xyz.openbmc_project.Ipmi.Server.execute as the KCS bridge
# calls it; prints busctl's "(yyyyay) netfn lun cmd cc n data…"
ipmi() {
  local netfn=$1 cmd=$2; shift 2
  busctl call $IPMI_SVC $IPMI_OBJ $IPMI_IF execute 'yyyaya{sv}' "$netfn" 0 "$cmd" $# "$@" 0
}

head_ "i2c-stub DIMM sensors and kernel tracepoints"
# JC-42.4 ambient temperature register 0x05, MSB first on the wire; SMBus words are
# little-endian, so 0x9401 stores 0x0194 = 25.25 °C, 0xc001 stores 0x01c0 = 28.0 °C.
i2cset -y $I2C_BUS 0x18 0x05 0x9401 w && i2cset -y $I2C_BUS 0x19 0x05 0xc001 w
check "i2c-stub holds the DIMM temperatures: 0x18 reg 5 = $(i2cget -y $I2C_BUS 0x18 0x05 w), 0x19 = $(i2cget -y $I2C_BUS 0x19 0x05 w)" \
  [ "$(i2cget -y $I2C_BUS 0x18 0x05 w)" = 0x9401 ]
i2ctrace on "$DIMM_LIST"

# ---------------------------------------------------------------------------------------
head_ "power cycle S5 -> S2 -> S0 -> S5 (chassis power + SysACPIStatus)"
i2ctrace mark POWER_ON
chassis On
say "chassis CurrentPowerState = $(getp $CH_SVC $CH_OBJ $CH_IF CurrentPowerState)"
wait_for 20 '[ "$(phase)" = org.acpigate.HostPhase.Phase.FirmwareInit ]'
check "chassis power On alone puts the BMC in firmware init at once: Phase = $(phase)" \
  [ "$(phase)" = org.acpigate.HostPhase.Phase.FirmwareInit ]
if [ -n "$HAVE_IPMI" ]; then
  # the way host firmware reports it: IPMI Set ACPI Power State (0x06/0x06), system state
  # S2 (0x82: bit 7 = set, code 0x02), device state unchanged (0x7f)
  r=$(ipmi 6 6 130 127 2>&1); say "IPMI Set ACPI Power State [0x82 0x7f] -> $r"
  check "ipmi-handlers accepted Set ACPI Power State (completion code 0)" [ "$(echo "$r" | awk '{print $5}')" = 0 ]
else
  set_acpi S2_D2
fi
expect S2_D2 "s0=inactive s2=active s5=inactive" inactive
[ -n "$HAVE_SG" ] && expect_gated
say "firmware init: holding S2 for 5 s (the window in which no DIMM SMBus transfer may happen)"
sleep 5
S0_TS=$(i2ctrace mark S0 | awk '{print $2}'); say "marker S0 at $S0_TS (CLOCK_MONOTONIC)"
set_acpi S0_G0_D0
expect S0_G0_D0 "s0=active s2=inactive s5=inactive" active
if [ -n "$HAVE_IPMI" ]; then
  r=$(ipmi 6 7 2>&1); say "IPMI Get ACPI Power State -> $r"
  check "IPMI Get ACPI Power State answers S0 (completion code 0, system state 0x00)" \
    [ "$(echo "$r" | awk '{print $5, $6, $7}')" = "0 2 0" ]
fi
if [ -n "$HAVE_LAN" ]; then
  r=$(lan raw 0x06 0x07 2>&1); say "ipmitool -I lanplus -C 17 raw 0x06 0x07 ->$r"
  check "ipmitool over LAN reads S0 from the suite: '$(echo $r)'" [ "$(echo $r)" = "00 2a" ]
fi
STATE_FILE=/var/lib/acpigate/acpi-state.json
check "the daemon persisted the state in its StateDirectory: $STATE_FILE = $(cat $STATE_FILE 2>&1 | head -c 300)" \
  grep -q S0_G0_D0 $STATE_FILE

if [ -n "$HAVE_SG" ]; then
  head_ "sensor-gate in S0: the stub's registers on D-Bus"
  wait_for 20 '[ "$(sval DIMM_A0_Temp)" = 25.25 ] && [ "$(sval DIMM_A1_Temp)" = 28 ]'
  got=$(sensors)
  check "values written with i2cset are on D-Bus: $got" \
    [ "$got" = "gate open=true; DIMM_A0_Temp 25.25 available=true; DIMM_A1_Temp 28 available=true" ]
  i2ctrace mark S0_READ
  i2cset -y $I2C_BUS 0x18 0x05 0x0002 w    # 0x0200 = 32.0 °C
  wait_for 20 '[ "$(sval DIMM_A0_Temp)" = 32 ]'; got=$(sval DIMM_A0_Temp)
  check "a new i2cset value (32.0 °C) follows on D-Bus: DIMM_A0_Temp $got" [ "$got" = 32 ]
else
  say "sensor-gate is not installed: reading the stub with i2cget in S0 to prove the trace plumbing"
  i2cget -y $I2C_BUS 0x18 0x05 w >/dev/null
  sleep 1
  i2ctrace mark S0_READ
fi

head_ "the gate, from the kernel's own i2c tracepoints"
i2ctrace assert-none "$DIMM_LIST" POWER_ON S0 && ok "no SMBus transfer to $DIMM_LIST between chassis power-on and S0" \
  || bad "SMBus transfers to $DIMM_LIST between chassis power-on and S0"
n=$(i2ctrace count "$DIMM_LIST" S0 S0_READ | tee /dev/stderr | sed -n 's/^i2ctrace: \([0-9]*\) transfer.*/\1/p')
check "transfers to the DIMMs again after S0: $n" [ "${n:-0}" -gt 0 ]
if [ -n "$HAVE_SG" ]; then
  # who made them: the trace names the task; none may be the test's own i2c tools
  others=$(i2ctrace count "$DIMM_LIST" S0 S0_READ | grep -E 'smbus_(read|write)' | grep -cE '^ *i2c(get|set|dump|transfer)-' || true)
  first=$(i2ctrace count "$DIMM_LIST" S0 S0_READ | sed -n 's/.* \([0-9]*\.[0-9]*\): smbus_read:.*/\1/p' | head -1)
  settle=$(sed -n 's/.*"settle_ms": *\([0-9]*\).*/\1/p' /etc/acpigate/sensor-gate.json)
  check "the first DIMM read came $(awk -v a="$first" -v b="$S0_TS" 'BEGIN { printf "%.3f", a - b }') s after the S0 marker (gate settle_ms $settle)" \
    awk -v a="$first" -v b="$S0_TS" -v s="$settle" 'BEGIN { exit !(a != "" && a - b >= s / 1000) }'
  check "they are sensor-gate's reads (tasks: $(i2ctrace count "$DIMM_LIST" S0 S0_READ | grep -E 'smbus_read' | awk '{print $1}' | sed 's/-[0-9]*$//' | sort | uniq -c | xargs))" \
    [ "${others:-0}" = 0 ]
fi

# ---------------------------------------------------------------------------------------
head_ "SIGKILL: systemd restarts acpi-state-daemon and it comes back in S0"
pid=$(unit_prop $DAEMON MainPID); nr=$(unit_prop $DAEMON NRestarts); hook_id=$(unit_prop $HOOK InvocationID)
say "kill -KILL $pid (NRestarts=$nr)"
kill -KILL "$pid"
wait_for 20 '[ "$(unit_prop $DAEMON NRestarts)" -gt "$nr" ]'
wait_for 20 '[ "$(systemctl is-active $DAEMON)" = active ]'
check "restarted: MainPID $pid -> $(unit_prop $DAEMON MainPID), NRestarts $nr -> $(unit_prop $DAEMON NRestarts), $(systemctl is-active $DAEMON)" \
  [ "$(unit_prop $DAEMON NRestarts)" -gt "$nr" ]
expect S0_G0_D0 "s0=active s2=inactive s5=inactive" active
check "the operator's S0 unit kept running through the daemon restart (same invocation)" \
  [ "$(unit_prop $HOOK InvocationID)" = "$hook_id" ]
if [ -n "$HAVE_SG" ]; then
  # sensor-gate must fail closed while the ACPI state's owner is gone: no transfer between its
  # own "left the bus" and "(re)appeared" log lines (journal and trace share CLOCK_MONOTONIC)
  wait_for 20 '[ "$(gate)" = true ]'
  jl() { journalctl -b -u $SG -o short-monotonic --no-pager | grep -F "$1" | tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
  gone=$(jl "left the bus"); back=$(jl "(re)appeared")
  say "sensor-gate journal: ACPI owner left at ${gone:-?}, reappeared at ${back:-?}; gate open again: $(gate)"
  if [ -n "$gone" ] && [ -n "$back" ]; then
    i2ctrace assert-none "$DIMM_LIST" "$gone" "$back" && ok "no SMBus transfer while acpi-state-daemon was gone ($gone .. $back)" \
      || bad "SMBus transfers while acpi-state-daemon was gone"
  else
    bad "sensor-gate did not log the ACPI owner leaving and reappearing"
  fi
fi

head_ "watchdog: petted only while the event loop moves; a stalled daemon is restarted"
pid=$(unit_prop $DAEMON MainPID); nr=$(unit_prop $DAEMON NRestarts); wd=$(unit_prop $DAEMON WatchdogUSec)
say "$DAEMON pid $pid, NRestarts $nr, WatchdogSec=$wd: left alone for 10 s (over 3 x WatchdogSec)"
sleep 10
# A daemon that never pets (or pets only when the probe through its loop is not needed)
# would have been killed by now.
check "healthy: still pid $pid and NRestarts $nr after 10 s ($(unit_prop $DAEMON MainPID), $(unit_prop $DAEMON NRestarts))" \
  [ "$(unit_prop $DAEMON MainPID)" = "$pid" ] && [ "$(unit_prop $DAEMON NRestarts)" = "$nr" ]
say "kill -USR2 $pid (--test-stall-signal): the executor stops; the runtime and its watchdog task run on"
kill -USR2 "$pid"
wait_for 30 '[ "$(unit_prop $DAEMON NRestarts)" -gt "$nr" ]'
wait_for 20 '[ "$(systemctl is-active $DAEMON)" = active ]'
journalctl -b -u $DAEMON --no-pager -o short-monotonic | grep -iE 'watchdog|stall' | tail -5
check "the stalled daemon (pid $pid) stopped petting (it logged why)" \
  sh -c "journalctl -b _PID=$pid --no-pager -o cat | grep -q 'watchdog: not petting'"
check "systemd logged a watchdog timeout for $DAEMON" \
  sh -c "journalctl -b -u $DAEMON --no-pager | grep -q 'Watchdog timeout'"
check "restarted: MainPID $pid -> $(unit_prop $DAEMON MainPID), NRestarts $nr -> $(unit_prop $DAEMON NRestarts)" \
  [ "$(unit_prop $DAEMON NRestarts)" -gt "$nr" ]
expect S0_G0_D0 "s0=active s2=inactive s5=inactive" active
STALLED_PID=$pid

# ---------------------------------------------------------------------------------------
head_ "D-Bus policy on the real system bus (uid 0 vs bmcuser)"
as_user() { setpriv --reuid=bmcuser --regid=bmcuser --clear-groups "$@"; }
policy() {  # policy WHO EXPECT(allowed|denied) DESCRIPTION CMD…
  local who=$1 want=$2 what=$3 out rc; shift 3
  out=$("$@" 2>&1); rc=$?
  local got=allowed; [ $rc -ne 0 ] && got=denied
  [ $rc -ne 0 ] && ! echo "$out" | grep -qiE 'access denied|not allowed|AccessDenied' && got="error"
  say "  $who: $what -> $got: $(echo "$out" | head -1)"
  check "$who $what is $want" [ "$got" = "$want" ]
}
REQ="busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su $ACPI_SVC 4"
policy bmcuser allowed "read SysACPIStatus" as_user busctl get-property $ACPI_SVC $ACPI_OBJ $ACPI_IF SysACPIStatus
policy bmcuser denied "set SysACPIStatus" as_user busctl set-property $ACPI_SVC $ACPI_OBJ $ACPI_IF SysACPIStatus s "$ACPI_ENUM.S5_G2"
policy bmcuser denied "own $ACPI_SVC" as_user $REQ
policy root allowed "set SysACPIStatus (to the current S0_G0_D0)" busctl set-property $ACPI_SVC $ACPI_OBJ $ACPI_IF SysACPIStatus s "$ACPI_ENUM.S0_G0_D0"
# DO_NOT_QUEUE: the daemon keeps the name; reply 3 (EXISTS) means the policy allowed the request
policy root allowed "own $ACPI_SVC (RequestName DO_NOT_QUEUE, reply 3 = exists)" $REQ
check "bmcuser's refused write changed nothing: $(acpi)" is_acpi S0_G0_D0
if [ -n "$HAVE_IPMI" ]; then
  policy bmcuser denied "call $IPMI_IF.execute (Get ACPI Power State)" as_user busctl call $IPMI_SVC $IPMI_OBJ $IPMI_IF execute 'yyyaya{sv}' 6 0 7 0 0
  policy root allowed "call $IPMI_IF.execute (Get ACPI Power State)" ipmi 6 7
  policy bmcuser denied "own $IPMI_SVC" as_user busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su $IPMI_SVC 4
fi
if [ -n "$HAVE_SG" ]; then
  policy bmcuser allowed "read DIMM_A0_Temp" as_user busctl get-property $SG_SVC $SENS/DIMM_A0_Temp $VAL_IF Value
  policy bmcuser denied "own $SG_SVC" as_user busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su $SG_SVC 4
  policy root allowed "own $SG_SVC (DO_NOT_QUEUE)" busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su $SG_SVC 4
fi

# ---------------------------------------------------------------------------------------
head_ "power off: chassis power Off drives S5 by itself (no S5 from the firmware)"
chassis Off
expect S5_G2 "s0=inactive s2=inactive s5=active" inactive
[ -n "$HAVE_SG" ] && expect_gated
if [ -n "$HAVE_LAN" ]; then
  lan sel elist > $OUT/sel.txt 2>&1; grep 'System ACPI Power State' $OUT/sel.txt | tail -8
  check "ipmitool sel elist shows the ACPI transitions: $(grep -c 'System ACPI Power State' $OUT/sel.txt) record(s)" \
    grep -q 'System ACPI Power State.*S0/G0' $OUT/sel.txt
fi
i2ctrace mark OFF
sleep 2
i2ctrace mark OFF_PLUS_2S
i2ctrace assert-none "$DIMM_LIST" OFF OFF_PLUS_2S && ok "no SMBus transfer to $DIMM_LIST in S5" \
  || bad "SMBus transfers to $DIMM_LIST in S5"

# ---------------------------------------------------------------------------------------
head_ "kernel trace evidence (events smbus/* and i2c/*, filter addr in $DIMM_LIST; clock mono)"
grep -E 'i2ctrace-mark|smbus_(read|write)|i2c_(read|write)' /sys/kernel/tracing/trace | sed 's/^ *//' > $OUT/trace.txt
awk '/i2ctrace-mark/ { print; n = 0; next } { n++; if (n <= 3) print; else if (n == 4) print "   …" }' $OUT/trace.txt
i2ctrace off

# ---------------------------------------------------------------------------------------
head_ "beside upstream ipmid on a phosphor-state-manager platform: OperatingSystemState and IpmiSelAdd"
# The second deployment the README describes: upstream phosphor-host-ipmid is the IPMI server
# (acpigate's ipmi-handlers and ipmi-lan stop: with both, each transition would be recorded
# twice), the host object is phosphor-state-manager's (a writable OperatingSystemState that
# nobody else writes), and the SEL is phosphor-sel-logger's. acpi-state-daemon then writes
# OperatingSystemState (write_os_status) and adds the ACPI records through IpmiSelAdd
# (sel_logger_records), over the real system bus with the installed policy.
HOST0_SVC=xyz.openbmc_project.State.Host0
OS_IF=xyz.openbmc_project.State.OperatingSystem.Status
OS_ENUM=$OS_IF.OSStatus
SEL=machine-sel-logger.service
oss() { getp $HOST0_SVC $HOST_OBJ $OS_IF OperatingSystemState; }
is_oss() { [ "$(oss)" = "$OS_ENUM.$1" ]; }
# expect_oss VALUE WHEN: OperatingSystemState on host0 becomes VALUE (10 s)
expect_oss() {
  wait_for 10 "is_oss $1"
  check "OperatingSystemState on $HOST0_SVC $HOST_OBJ = $(oss) $2 (want $OS_ENUM.$1)" is_oss "$1"
}
sel_lines() { journalctl -b -u $SEL --no-pager -o cat | grep '^IpmiSelAdd record'; }
systemctl stop ipmi-lan.service $IPMI 2>/dev/null
mkdir -p /run/systemd/system/machine-platform.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/machine-platform --power off --os-status\n' \
  > /run/systemd/system/machine-platform.service.d/state-manager.conf
CONF=/etc/acpigate/acpi-state-daemon.json
printf '{\n  "post_complete_means_working": false,\n  "write_os_status": true,\n  "sel_logger_records": true\n}\n' > $CONF
r=$(/usr/libexec/acpigate/acpi-state-daemon --check 2>&1); say "acpi-state-daemon --check -> $r"
check "the installed applet accepts this platform's configuration ($CONF)" [ "${r%% (*}" = "$CONF: ok" ]
systemctl daemon-reload
systemctl restart machine-platform.service
systemctl start $SEL
systemctl restart $DAEMON
wait_for 20 '[ "$(systemctl is-active $DAEMON)" = active ] && [ "$(systemctl is-active $SEL)" = active ]'
check "$DAEMON restarted with $CONF, $SEL (the sel-logger stand-in) is $(systemctl is-active $SEL)" \
  [ "$(systemctl is-active $DAEMON)" = active ]
expect S5_G2 "s0=inactive s2=inactive s5=active" inactive
expect_oss Inactive "after the start in S5"
check "no SEL record for the state found at start (the baseline, not a transition): $(sel_lines | wc -l) line(s)" \
  [ "$(sel_lines | wc -l)" = 0 ]

chassis On
wait_for 20 '[ "$(phase)" = org.acpigate.HostPhase.Phase.FirmwareInit ]'
say "Phase = $(phase)"
expect_oss Inactive "in firmware init"
# upstream ipmid answers the host's Set ACPI Power State by writing the ACPI object
set_acpi S2_D2
expect S2_D2 "s0=inactive s2=active s5=inactive" inactive
expect_oss Inactive "in S2"
set_acpi S0_G0_D0
expect S0_G0_D0 "s0=active s2=inactive s5=inactive" active
expect_oss Standby "in settled S0 (a BiosPost sensor reads from now on)"
chassis Off
expect S5_G2 "s0=inactive s2=inactive s5=active" inactive
expect_oss Inactive "at once in S5"

wait_for 10 '[ "$(sel_lines | wc -l)" -ge 3 ]'
sel_lines | sed 's/^/  /'
ACPI_PATH=$ACPI_OBJ
want=$(printf 'IpmiSelAdd record %s: message="Host ACPI power state: %s" path="%s" sel_data=[%s,0xff,0xff] assert=true generator_id=0x0020\n' \
  1 S2_D2 $ACPI_PATH 0x02 2 S0_G0_D0 $ACPI_PATH 0x00 3 S5_G2 $ACPI_PATH 0x05)
check "one IpmiSelAdd per transition, in order (S2 0x02, S0 0x00, S5 0x05), generator 0x0020 (BMC), path = the ACPI object" \
  [ "$(sel_lines)" = "$want" ]
[ "$(sel_lines)" = "$want" ] || { say "wanted:"; echo "$want" | sed 's/^/  /'; }
inv=$(unit_prop $DAEMON InvocationID)
check "no warning from $DAEMON (this invocation) about the host object or the SEL" \
  sh -c "! journalctl _SYSTEMD_INVOCATION_ID=$inv --no-pager -o cat -p warning | grep -qiE 'OperatingSystemState|IpmiSelAdd|sel-logger'"

head_ "systemd-analyze security (exposure; at most 2.0 per unit)"
units=$(cd /usr/lib/systemd/system && grep -l '^ExecStart=.*/usr/libexec/acpigate/' *.service 2>/dev/null)
check "units running an acpigate applet: $(echo $units)" [ -n "$units" ]
for u in $units; do
  systemd-analyze security --no-pager "$u" > "$OUT/security-$u.txt" 2>&1
  # last line: "→ Overall exposure level for <unit>: 0.5 SAFE :-}"
  level=$(tail -1 "$OUT/security-$u.txt" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  check "$u: exposure ${level:-unreadable} (at most 2.0)" \
    awk -v l="$level" 'BEGIN { exit !(l != "" && l + 0 <= 2.0) }'
done

if [ -n "$HAVE_SG" ]; then
  head_ "other masters on the DIMM bus: found, named, published (Gate.OtherMasters), logged once"
  # Stub chips beside the DIMMs (i2c-stub chip_addr): 0x1a for a jc42 driver, 0x50 for an
  # at24 eeprom; the scan runs every other_masters_check_ms (1 s in this image's config).
  SYSI2C=/sys/bus/i2c/devices/i2c-$I2C_BUS
  om() { busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters 2>&1; }
  none='a(sss) 0'
  check "none while the bus is sensor-gate's alone: $(om)" [ "$(om)" = "$none" ]
  echo jc42 0x1a > $SYSI2C/new_device
  wait_for 10 'om | grep -qF "\"driver\" \"jc42 bound to $I2C_BUS-001a\""'
  check "a jc42 driver bound at 0x1a: $(om)" sh -c "busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters | grep -qF '\"dimm_smbus\" \"driver\" \"jc42 bound to $I2C_BUS-001a\"'"
  echo 0x1a > $SYSI2C/delete_device
  wait_for 10 '[ "$(om)" = "$none" ]'
  check "gone once unbound: $(om)" [ "$(om)" = "$none" ]
  echo 24c02 0x50 > $SYSI2C/new_device
  wait_for 10 'om | grep -qF "\"eeprom\" \"at24 eeprom at $I2C_BUS-0050\""'
  check "an at24 eeprom at 0x50: $(om)" sh -c "busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters | grep -qF '\"eeprom\" \"at24 eeprom at $I2C_BUS-0050\"'"
  echo 0x50 > $SYSI2C/delete_device
  wait_for 10 '[ "$(om)" = "$none" ]'
  # A process holding the bus open. The shipped unit cannot see other processes' fd tables
  # (no capabilities, a user namespace of its own): it says so once at start, and finds none.
  check "the shipped unit says it cannot see processes holding the bus" \
    sh -c "journalctl _SYSTEMD_INVOCATION_ID=$(unit_prop $SG InvocationID) --no-pager -o cat | grep -q 'a process holding a DIMM bus.s /dev/i2c-N open is not found'"
  inv=$(unit_prop $SG InvocationID)
  warned=$(journalctl _SYSTEMD_INVOCATION_ID=$inv --no-pager -o cat -p warning | grep -c '^another master on DIMM bus dimm_smbus' || true)
  journalctl _SYSTEMD_INVOCATION_ID=$inv --no-pager -o cat | grep -E 'master on DIMM bus|no longer on DIMM bus' | sed 's/^/  /'
  check "each logged once as a warning with what to change ($warned of 2)" [ "$warned" = 2 ]
  # With the drop-in the README gives, it names the process.
  mkdir -p /run/systemd/system/$SG.d
  printf '[Service]\nPrivateUsers=no\nCapabilityBoundingSet=CAP_SYS_PTRACE\nAmbientCapabilities=CAP_SYS_PTRACE\n' \
    > /run/systemd/system/$SG.d/see-holders.conf
  systemctl daemon-reload
  systemctl restart $SG
  wait_for 20 '[ "$(systemctl is-active $SG)" = active ]'
  sleep 600 < /dev/i2c-$I2C_BUS &
  holder=$!
  wait_for 10 'om | grep -qF "pid $holder (sleep) holds /dev/i2c-$I2C_BUS open"'
  check "with CAP_SYS_PTRACE: a second process holding /dev/i2c-$I2C_BUS open (pid $holder): $(om)" \
    sh -c "busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters | grep -qF '\"open\" \"pid $holder (sleep) holds /dev/i2c-$I2C_BUS open\"'"
  kill $holder; wait $holder 2>/dev/null
  wait_for 10 '[ "$(om)" = "$none" ]'
  check "none again once it exits: $(om)" [ "$(om)" = "$none" ]
  rm -r /run/systemd/system/$SG.d
  systemctl daemon-reload
  systemctl restart $SG
  wait_for 20 '[ "$(systemctl is-active $SG)" = active ]'
fi

if [ -n "$HAVE_SG" ]; then
  head_ "sensors from entity-manager's records (sensors_from), on the real bus and kernel"
  # The entity-manager stand-in (machine-platform --entity-manager) publishes a board file
  # as entity-manager does; sensor-gate, restarted with "sensors_from": "entity-manager",
  # takes two AcpigateDimmTemp records on the i2c-stub bus — no bus listed in its file, so
  # each record's Bus N is /dev/i2c-N — through the installed unit and bus policy.
  EM_FILE=/run/machine-em-board.json
  EM_OBJ=/xyz/openbmc_project/inventory/system/board/EM_Board
  {
    echo '{ "Exposes": ['
    echo "  { \"Address\": \"0x18\", \"Bus\": $I2C_BUS, \"DeviceType\": \"JC42\", \"Name\": \"DIMM C0 Temp\","
    echo '    "Thresholds": [ { "Direction": "greater than", "Name": "upper non critical", "Severity": 0, "Value": 85 } ],'
    echo '    "Type": "AcpigateDimmTemp" },'
    echo "  { \"Address\": \"0x19\", \"Bus\": $I2C_BUS, \"DeviceType\": \"JC42\", \"Name\": \"DIMM C1 Temp\","
    echo '    "Type": "AcpigateDimmTemp" } ],'
    echo '  "Name": "EM Board", "Probe": "TRUE", "Type": "Board" }'
  } > $EM_FILE
  cp /etc/acpigate/sensor-gate.json /run/sensor-gate.json.from-file
  printf '{\n  "sensors_from": "entity-manager",\n  "poll_ms": 500,\n  "other_masters_check_ms": 1000\n}\n' \
    > /etc/acpigate/sensor-gate.json
  r=$(/usr/libexec/acpigate/sensor-gate --check 2>&1); say "sensor-gate --check -> $r"
  check "the installed applet accepts sensors_from entity-manager" \
    [ "${r#*: ok (sensors from entity-manager}" != "$r" ]
  systemd-run --quiet --unit=machine-em --collect /usr/local/bin/machine-platform --entity-manager $EM_FILE
  systemctl restart $SG
  wait_for 20 '[ "$(systemctl is-active $SG)" = active ] && busctl introspect $SG_SVC $SENS/DIMM_C1_Temp'
  n=$(busctl tree --list $SG_SVC 2>/dev/null | grep -c "^$SENS/DIMM_C")
  check "$SG ($(systemctl is-active $SG)) serves both records' sensors ($n)" [ "$n" = 2 ]
  check "and not the file's sensors any more" \
    sh -c "! busctl introspect $SG_SVC $SENS/DIMM_A0_Temp >/dev/null 2>&1"
  assoc=$(busctl get-property $SG_SVC $SENS/DIMM_C0_Temp xyz.openbmc_project.Association.Definitions Associations 2>&1)
  check "DIMM_C0_Temp's chassis is its record's board: $assoc" [ "$assoc" = "a(sss) 1 \"chassis\" \"all_sensors\" \"$EM_OBJ\"" ]
  wh=$(busctl get-property $SG_SVC $SENS/DIMM_C0_Temp xyz.openbmc_project.Sensor.Threshold.Warning WarningHigh 2>&1)
  check "DIMM_C0_Temp WarningHigh from the record: $wh" [ "$wh" = "d 85" ]
  chassis On
  wait_for 20 '[ "$(phase)" = org.acpigate.HostPhase.Phase.FirmwareInit ]'
  check "closed in firmware init: DIMM_C0_Temp available=$(savail DIMM_C0_Temp)" [ "$(savail DIMM_C0_Temp)" = false ]
  set_acpi S0_G0_D0
  wait_for 20 '[ "$(savail DIMM_C0_Temp)" = true ] && [ "$(savail DIMM_C1_Temp)" = true ]'
  check "read over /dev/i2c-$I2C_BUS in settled S0: DIMM_C0_Temp $(sval DIMM_C0_Temp) available=$(savail DIMM_C0_Temp), DIMM_C1_Temp $(sval DIMM_C1_Temp) available=$(savail DIMM_C1_Temp)" \
    sh -c "[ \"\$(busctl get-property $SG_SVC $SENS/DIMM_C0_Temp $AV_IF Available)\" = 'b true' ] && [ \"\$(busctl get-property $SG_SVC $SENS/DIMM_C1_Temp $AV_IF Available)\" = 'b true' ]"
  inv=$(unit_prop $SG InvocationID)
  journalctl _SYSTEMD_INVOCATION_ID=$inv --no-pager -o cat | grep -E 'entity-manager|from /xyz' | sed 's/^/  /'
  check "no warning about a record or about reaching entity-manager" \
    sh -c "! journalctl _SYSTEMD_INVOCATION_ID=$inv --no-pager -o cat -p warning | grep -qE 'entity-manager record /|waiting for entity-manager|following entity-manager'"
  # The bus the records named (no file entry: named i2c-N) is scanned for other masters.
  echo jc42 0x1a > /sys/bus/i2c/devices/i2c-$I2C_BUS/new_device
  wait_for 10 'busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters | grep -qF "\"i2c-$I2C_BUS\" \"driver\""'
  check "a jc42 bound on the records' bus is found there: $(busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters 2>&1)" \
    sh -c "busctl get-property $SG_SVC $GATE_OBJ $GATE_IF OtherMasters | grep -qF '\"i2c-$I2C_BUS\" \"driver\" \"jc42 bound to $I2C_BUS-001a\"'"
  echo 0x1a > /sys/bus/i2c/devices/i2c-$I2C_BUS/delete_device
  chassis Off
  systemctl stop machine-em
  cp /run/sensor-gate.json.from-file /etc/acpigate/sensor-gate.json
  systemctl restart $SG
  wait_for 20 '[ "$(systemctl is-active $SG)" = active ]'
fi

head_ "the watchdog raised no false alarm"
# Probed from READY on only (before that, the bus policy refuses the probe's call to a
# connection that does not own its name yet): in this whole boot, through every start of
# acpi-state-daemon, only the stalled process may have logged it.
wd_all=$(journalctl -b --no-pager -o cat -u $DAEMON -u $SG -u $IPMI -u ipmi-lan.service | grep -c 'watchdog: not petting')
wd_stalled=$(journalctl -b _PID=${STALLED_PID:-0} --no-pager -o cat | grep -c 'watchdog: not petting')
check "'watchdog: not petting' logged $wd_all time(s), all by the stalled pid ${STALLED_PID:-?} ($wd_stalled)" \
  [ "$wd_all" = "$wd_stalled" ]
# and systemd killed nothing else for it (ipmi-lan, which owns no callable name, once went
# unpetted on this policy and was killed every WatchdogSec)
wd_kills=$(journalctl -b --no-pager -o cat -u $DAEMON -u $SG -u $IPMI -u ipmi-lan.service | grep 'Watchdog timeout' | sed 's/:.*//' | sort | uniq -c | xargs)
check "systemd's watchdog kills this boot: ${wd_kills:-none} (only the stalled $DAEMON, once)" \
  [ "$wd_kills" = "1 $DAEMON" ]

head_ "warnings the suite logged (journal priority <= warning)"
journalctl -b --no-pager -o short-monotonic -p warning -u $DAEMON -u $SG | grep -v '^-- ' | tail -25

if [ $FAILS -ne 0 ]; then
  head_ "journal of the suite (failures above)"
  journalctl -b --no-pager -o short-monotonic -u $DAEMON -u $SG -u $IPMI -u ipmi-lan.service \
    -u machine-platform -u $SEL -u $HOOK | tail -120
fi
head_ "$CHECKS checks, $FAILS failed"
exit $FAILS
