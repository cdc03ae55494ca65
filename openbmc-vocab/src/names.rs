//! Bus names, object paths and interface names, as phosphor-dbus-interfaces and the upstream
//! daemons spell them (and acpigate's own `org.acpigate.*`).

/// Well-known bus names.
pub mod bus {
    /// acpi-state-daemon; the same name as upstream's google-misc daemon, so we are a drop-in.
    pub const ACPI_POWER_STATE: &str = "xyz.openbmc_project.Control.Power.ACPIPowerState";
    /// Fixed name bmcweb reads BootProgress from (phosphor-state-manager / x86-power-control).
    pub const STATE_HOST: &str = "xyz.openbmc_project.State.Host";
    /// Chassis power (x86-power-control, phosphor-chassis-state-manager).
    pub const STATE_CHASSIS: &str = "xyz.openbmc_project.State.Chassis";
    /// x86-power-control's OperatingSystem.Status owner (same connection as the host object).
    pub const STATE_OPERATING_SYSTEM: &str = "xyz.openbmc_project.State.OperatingSystem";
    /// Host 0's own name: phosphor-state-manager owns it beside [`STATE_HOST`], and
    /// x86-power-control on the same connection as its host object. dbus-sensors reads
    /// `OperatingSystemState` for its `PowerState: "BiosPost"` sensors from this name
    /// (openbmc/dbus-sensors fc2953c5, `src/Utils.hpp` namespace `post`).
    pub const STATE_HOST0: &str = "xyz.openbmc_project.State.Host0";
    /// phosphor-sel-logger: `IpmiSelAdd` adds a system event record to the IPMI SEL
    /// (openbmc/phosphor-sel-logger 9b3b0da9, `include/sel_logger.hpp`).
    pub const LOGGING_IPMI: &str = "xyz.openbmc_project.Logging.IPMI";
    /// phosphor-host-postd.
    pub const STATE_BOOT_RAW: &str = "xyz.openbmc_project.State.Boot.Raw";
    /// phosphor-pid-control.
    pub const FAN_CTRL: &str = "xyz.openbmc_project.State.FanCtrl";
    /// dbus-sensors fan daemon, owner of the FanPwm objects.
    pub const FAN_SENSOR: &str = "xyz.openbmc_project.FanSensor";
    /// The IPMI command server (phosphor-host-ipmid, or ours).
    pub const IPMI_HOST: &str = "xyz.openbmc_project.Ipmi.Host";
    /// ipmid's host command queue (`Control.Host.Execute`, e.g. SoftOff), which
    /// phosphor-ipmi-host's SoftPowerOff calls; ipmid owns it beside [`IPMI_HOST`]
    /// (openbmc/phosphor-host-ipmid e6899a55, `systemintfcmds.cpp`). acpigate never owns it.
    pub const CONTROL_HOST: &str = "xyz.openbmc_project.Control.Host";
    /// Prefix of the names IPMI channel front ends own (`…Channel.ipmi_kcs3`).
    pub const IPMI_CHANNEL_PREFIX: &str = "xyz.openbmc_project.Ipmi.Channel.";
    /// sensor-gate, our DIMM temperature service.
    pub const DIMM_TEMP_SENSOR: &str = "xyz.openbmc_project.AcpigateDimmSensor";
    /// systemd.
    pub const SYSTEMD: &str = "org.freedesktop.systemd1";
    /// The message bus itself.
    pub const DBUS: &str = "org.freedesktop.DBus";
    /// entity-manager: the board inventory and its Exposes records
    /// (openbmc/entity-manager 3b745d22, `entity_manager.cpp`).
    pub const ENTITY_MANAGER: &str = "xyz.openbmc_project.EntityManager";
}

/// Object paths.
pub mod path {
    pub const ACPI_POWER_STATE: &str = "/xyz/openbmc_project/control/host0/acpi_power_state";
    /// The parent of [`ACPI_POWER_STATE`], where acpi-state-daemon serves its ObjectManager:
    /// `GetManagedObjects` lists the objects below the manager's path, never the path itself.
    pub const CONTROL_HOST0: &str = "/xyz/openbmc_project/control/host0";
    pub const HOST0: &str = "/xyz/openbmc_project/state/host0";
    pub const CHASSIS0: &str = "/xyz/openbmc_project/state/chassis0";
    pub const BOOT_RAW0: &str = "/xyz/openbmc_project/state/boot/raw0";
    /// Where every Sensor.Value service must serve its ObjectManager.
    pub const SENSORS: &str = "/xyz/openbmc_project/sensors";
    pub const TEMPERATURE_SENSORS: &str = "/xyz/openbmc_project/sensors/temperature";
    /// Where phosphor-pid-control serves its ObjectManager (`main.cpp` `modeRoot`, ca3d666e):
    /// each zone it builds is announced with InterfacesAdded from here.
    pub const FANCTRL: &str = "/xyz/openbmc_project/settings/fanctrl";
    /// pid-control zones are `FANCTRL_ZONE_PREFIX` + zone number.
    pub const FANCTRL_ZONE_PREFIX: &str = "/xyz/openbmc_project/settings/fanctrl/zone";
    /// dbus-sensors PWM objects are `FANPWM_PREFIX` + name.
    pub const FANPWM_PREFIX: &str = "/xyz/openbmc_project/control/fanpwm/";
    pub const IPMI: &str = "/xyz/openbmc_project/Ipmi";
    /// phosphor-sel-logger's object.
    pub const LOGGING_IPMI: &str = "/xyz/openbmc_project/Logging/IPMI";
    pub const SYSTEMD: &str = "/org/freedesktop/systemd1";
    /// The message bus's own object.
    pub const DBUS: &str = "/org/freedesktop/DBus";
    /// Where inventory objects live (entity-manager's boards under `…/inventory/system/`).
    pub const INVENTORY: &str = "/xyz/openbmc_project/inventory";
    /// sensor-gate's gate status object.
    pub const ACPIGATE_GATE: &str = "/xyz/openbmc_project/acpigate/gate";
    /// ipmi-handlers' SEL status object (on the `xyz.openbmc_project.Ipmi.Host` connection).
    pub const ACPIGATE_SEL: &str = "/xyz/openbmc_project/acpigate/sel";

    /// `/xyz/openbmc_project/sensors/temperature/<name>`.
    pub fn temperature_sensor(name: &str) -> String {
        format!("{TEMPERATURE_SENSORS}/{name}")
    }
    /// `/xyz/openbmc_project/settings/fanctrl/zone<n>`.
    pub fn fanctrl_zone(n: u32) -> String {
        format!("{FANCTRL_ZONE_PREFIX}{n}")
    }
    /// The zone number of a `/xyz/openbmc_project/settings/fanctrl/zone<n>` path (none for any
    /// other path, e.g. a PID's `…/zone<n>/<pid>` object).
    pub fn fanctrl_zone_number(p: &str) -> Option<u32> {
        let n = p.strip_prefix(FANCTRL_ZONE_PREFIX)?;
        // Digits only: `u32::from_str` would also take a leading `+`.
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok()
    }
    /// `/xyz/openbmc_project/control/fanpwm/<name>`.
    pub fn fanpwm(name: &str) -> String {
        format!("{FANPWM_PREFIX}{name}")
    }
}

/// Interface names.
pub mod iface {
    pub const ACPI_POWER_STATE: &str = "xyz.openbmc_project.Control.Power.ACPIPowerState";
    pub const STATE_HOST: &str = "xyz.openbmc_project.State.Host";
    pub const STATE_CHASSIS: &str = "xyz.openbmc_project.State.Chassis";
    pub const OS_STATUS: &str = "xyz.openbmc_project.State.OperatingSystem.Status";
    pub const BOOT_PROGRESS: &str = "xyz.openbmc_project.State.Boot.Progress";
    pub const BOOT_RAW: &str = "xyz.openbmc_project.State.Boot.Raw";
    pub const SENSOR_VALUE: &str = "xyz.openbmc_project.Sensor.Value";
    pub const AVAILABILITY: &str = "xyz.openbmc_project.State.Decorator.Availability";
    pub const OPERATIONAL_STATUS: &str = "xyz.openbmc_project.State.Decorator.OperationalStatus";
    pub const THRESHOLD_WARNING: &str = "xyz.openbmc_project.Sensor.Threshold.Warning";
    pub const THRESHOLD_CRITICAL: &str = "xyz.openbmc_project.Sensor.Threshold.Critical";
    pub const CONTROL_MODE: &str = "xyz.openbmc_project.Control.Mode";
    pub const FAN_PWM: &str = "xyz.openbmc_project.Control.FanPwm";
    pub const IPMI_SERVER: &str = "xyz.openbmc_project.Ipmi.Server";
    /// phosphor-sel-logger's interface, with [`super::method::IPMI_SEL_ADD`].
    pub const LOGGING_IPMI: &str = "xyz.openbmc_project.Logging.IPMI";
    pub const SYSTEMD_MANAGER: &str = "org.freedesktop.systemd1.Manager";
    /// The message bus's own interface (`Hello`, `GetId`, `RequestName`, …).
    pub const DBUS: &str = "org.freedesktop.DBus";
    pub const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
    pub const OBJECT_MANAGER: &str = "org.freedesktop.DBus.ObjectManager";
    /// acpigate's own host-phase interface, on the ACPI object (see [`crate::acpigate`]).
    pub const ACPIGATE_HOST_PHASE: &str = "org.acpigate.HostPhase";
    /// sensor-gate's gate status interface, at [`super::path::ACPIGATE_GATE`].
    pub const ACPIGATE_GATE: &str = "org.acpigate.Gate";
    /// ipmi-handlers' SEL counters, at [`super::path::ACPIGATE_SEL`].
    pub const ACPIGATE_SEL: &str = "org.acpigate.Sel";
    /// `Associations: a(sss)`, (forward, reverse, endpoint) triples the mapper
    /// (phosphor-objmgr) turns into association objects; see [`super::association`].
    pub const ASSOCIATION_DEFINITIONS: &str = "xyz.openbmc_project.Association.Definitions";
    /// What makes an inventory object a chassis for bmcweb (`getChassis`, with
    /// [`ITEM_CHASSIS`]).
    pub const ITEM_BOARD: &str = "xyz.openbmc_project.Inventory.Item.Board";
    pub const ITEM_CHASSIS: &str = "xyz.openbmc_project.Inventory.Item.Chassis";
    /// entity-manager publishes an Exposes record of `"Type": "<T>"` as
    /// `xyz.openbmc_project.Configuration.<T>` (openbmc/entity-manager 3b745d22,
    /// `postExposesRecordsToDBus`); sensor-gate's DIMM sensor records are this type.
    pub const ACPIGATE_DIMM_TEMP_RECORD: &str =
        "xyz.openbmc_project.Configuration.AcpigateDimmTemp";
}

/// Association names, as the upstream stack pairs them.
pub mod association {
    /// Every dbus-sensors sensor carries `(CHASSIS, ALL_SENSORS, <board object>)`
    /// (openbmc/dbus-sensors fc2953c5, `src/Utils.cpp` `createAssociation`: the board is the
    /// parent of the entity-manager record's path); bmcweb lists a chassis' sensors as the
    /// endpoints of `<chassis>/all_sensors` (openbmc/bmcweb 7debb892,
    /// `redfish-core/lib/sensors.hpp` `getChassis`).
    pub const CHASSIS: &str = "chassis";
    pub const ALL_SENSORS: &str = "all_sensors";
}

/// Property names, spelled as upstream spells them (zbus would camel-case them otherwise).
pub mod prop {
    pub const SYS_ACPI_STATUS: &str = "SysACPIStatus";
    pub const DEV_ACPI_STATUS: &str = "DevACPIStatus";
    pub const CURRENT_POWER_STATE: &str = "CurrentPowerState";
    pub const REQUESTED_POWER_TRANSITION: &str = "RequestedPowerTransition";
    pub const LAST_STATE_CHANGE_TIME: &str = "LastStateChangeTime";
    pub const CURRENT_HOST_STATE: &str = "CurrentHostState";
    pub const REQUESTED_HOST_TRANSITION: &str = "RequestedHostTransition";
    pub const OPERATING_SYSTEM_STATE: &str = "OperatingSystemState";
    pub const BOOT_PROGRESS: &str = "BootProgress";
    pub const BOOT_PROGRESS_LAST_UPDATE: &str = "BootProgressLastUpdate";
    pub const VALUE: &str = "Value";
    pub const MAX_VALUE: &str = "MaxValue";
    pub const MIN_VALUE: &str = "MinValue";
    pub const UNIT: &str = "Unit";
    pub const AVAILABLE: &str = "Available";
    pub const FUNCTIONAL: &str = "Functional";
    pub const MANUAL: &str = "Manual";
    pub const FAIL_SAFE: &str = "FailSafe";
    pub const TARGET: &str = "Target";
    pub const WARNING_HIGH: &str = "WarningHigh";
    pub const WARNING_LOW: &str = "WarningLow";
    pub const WARNING_ALARM_HIGH: &str = "WarningAlarmHigh";
    pub const WARNING_ALARM_LOW: &str = "WarningAlarmLow";
    pub const CRITICAL_HIGH: &str = "CriticalHigh";
    pub const CRITICAL_LOW: &str = "CriticalLow";
    pub const CRITICAL_ALARM_HIGH: &str = "CriticalAlarmHigh";
    pub const CRITICAL_ALARM_LOW: &str = "CriticalAlarmLow";
    pub const ASSOCIATIONS: &str = "Associations";
}

/// Method names of other services that we call.
pub mod method {
    /// phosphor-sel-logger: `IpmiSelAdd(s message, s path, ay sel_data, b assert,
    /// q generator_id) -> q record_id`. `path` is a string (`s`), not an object path: a call
    /// that sends `o` is refused for its signature. At most 3 event-data bytes.
    pub const IPMI_SEL_ADD: &str = "IpmiSelAdd";
    /// Its argument signature, exactly as upstream declares it.
    pub const IPMI_SEL_ADD_SIGNATURE: &str = "ssaybq";
    /// `org.freedesktop.DBus.ObjectManager.GetManagedObjects() -> a{oa{sa{sv}}}`.
    pub const GET_MANAGED_OBJECTS: &str = "GetManagedObjects";
    /// The bus daemon's `GetId() -> s`: open to every client in every bus policy.
    pub const GET_ID: &str = "GetId";
}

/// Signal names we follow (standard D-Bus ones that carry no proxy of their own here).
pub mod signal {
    /// `org.freedesktop.DBus.ObjectManager.InterfacesAdded(o path, a{sa{sv}} interfaces)`.
    pub const INTERFACES_ADDED: &str = "InterfacesAdded";
    /// `org.freedesktop.DBus.ObjectManager.InterfacesRemoved(o path, as interfaces)`.
    pub const INTERFACES_REMOVED: &str = "InterfacesRemoved";
    /// `org.freedesktop.DBus.Properties.PropertiesChanged(s iface, a{sv} changed, as gone)`.
    pub const PROPERTIES_CHANGED: &str = "PropertiesChanged";
    /// `org.freedesktop.DBus.NameOwnerChanged(s name, s old, s new)`.
    pub const NAME_OWNER_CHANGED: &str = "NameOwnerChanged";
}

/// D-Bus error names we return or recognise.
pub mod error {
    /// phosphor-dbus-interfaces `Common.Error.NotAllowed`.
    pub const NOT_ALLOWED: &str = "xyz.openbmc_project.Common.Error.NotAllowed";
    /// phosphor-dbus-interfaces `Common.Error.InvalidArgument`.
    pub const INVALID_ARGUMENT: &str = "xyz.openbmc_project.Common.Error.InvalidArgument";
    /// sd-bus (and so sdbusplus) refusing a `Set` of a property registered read-only, as
    /// x86-power-control registers `OperatingSystemState`.
    pub const PROPERTY_READ_ONLY: &str = "org.freedesktop.DBus.Error.PropertyReadOnly";
    /// The bus or the service refusing a caller.
    pub const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
}

#[cfg(test)]
mod tests {
    use super::path;

    #[test]
    fn fanctrl_zone_numbers_round_trip_and_nothing_else_is_a_zone() {
        for n in [0, 1, 17, u32::MAX] {
            assert_eq!(path::fanctrl_zone_number(&path::fanctrl_zone(n)), Some(n));
        }
        for p in [
            path::FANCTRL,
            "/xyz/openbmc_project/settings/fanctrl/zone",
            "/xyz/openbmc_project/settings/fanctrl/zone1/fleeting0",
            "/xyz/openbmc_project/settings/fanctrl/zone+1",
            "/xyz/openbmc_project/settings/fanctrl/zone99999999999",
            "/xyz/openbmc_project/sensors/temperature/zone1",
        ] {
            assert_eq!(path::fanctrl_zone_number(p), None, "{p}");
        }
    }
}
