//! Every enum value round-trips through its full D-Bus string, serde and (with the `zbus`
//! feature) the bus signature.

use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::sensor::Unit;
use openbmc_vocab::state::{
    ChassisPowerState, ChassisTransition, HostState, HostTransition, OsStatus,
};

/// With the `zbus` feature the enums also carry the bus signature, checked below; without it
/// they need nothing more.
#[cfg(feature = "zbus")]
trait OnTheBus: zbus::Type {}
#[cfg(feature = "zbus")]
impl<E: zbus::Type> OnTheBus for E {}
#[cfg(not(feature = "zbus"))]
trait OnTheBus {}
#[cfg(not(feature = "zbus"))]
impl<E> OnTheBus for E {}

fn round_trip<E>(expected_prefix: &str, expected_count: usize)
where
    E: DbusEnum + serde::Serialize + serde::de::DeserializeOwned + std::str::FromStr + OnTheBus,
    <E as std::str::FromStr>::Err: std::fmt::Debug,
{
    assert_eq!(E::PREFIX, expected_prefix);
    assert_eq!(E::ALL.len(), expected_count);
    #[cfg(feature = "zbus")]
    assert_eq!(<E as zbus::Type>::SIGNATURE, &zbus::Signature::Str);
    let mut shorts = std::collections::BTreeSet::new();
    for &v in E::ALL {
        assert!(shorts.insert(v.short()), "duplicate {}", v.short());
        let full = v.dbus_str();
        assert_eq!(full, format!("{expected_prefix}.{}", v.short()));
        assert_eq!(E::from_dbus_str(&full), Ok(v));
        assert_eq!(E::from_short(v.short()), Some(v));
        let parsed: E = full.parse().expect("parse");
        assert_eq!(parsed, v);
        let json = serde_json::to_string(&v).expect("serialize");
        assert_eq!(serde_json::from_str::<E>(&json).expect("deserialize"), v);
        // The D-Bus wire form: a plain string with the full value.
        #[cfg(feature = "zbus")]
        {
            let variant = zbus::Variant::from(full.clone());
            let back: String = variant.try_into().expect("string");
            assert_eq!(back, full);
        }
    }
    assert!(E::from_dbus_str(&format!("{expected_prefix}.NoSuchValue")).is_err());
}

#[test]
fn acpi() {
    round_trip::<AcpiState>("xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI", 14);
}
#[test]
fn chassis() {
    round_trip::<ChassisPowerState>("xyz.openbmc_project.State.Chassis.PowerState", 4);
    round_trip::<ChassisTransition>("xyz.openbmc_project.State.Chassis.Transition", 3);
}
#[test]
fn host() {
    round_trip::<HostState>("xyz.openbmc_project.State.Host.HostState", 7);
    round_trip::<HostTransition>("xyz.openbmc_project.State.Host.Transition", 5);
}
#[test]
fn os() {
    round_trip::<OsStatus>(
        "xyz.openbmc_project.State.OperatingSystem.Status.OSStatus",
        8,
    );
}
#[test]
fn boot_progress() {
    round_trip::<ProgressStage>("xyz.openbmc_project.State.Boot.Progress.ProgressStages", 12);
    assert_eq!(
        ProgressStage::PciInit.dbus_str(),
        "xyz.openbmc_project.State.Boot.Progress.ProgressStages.PCIInit"
    );
}
#[test]
fn unit() {
    round_trip::<Unit>("xyz.openbmc_project.Sensor.Value.Unit", 15);
}
#[test]
fn phase() {
    round_trip::<HostPhase>("org.acpigate.HostPhase.Phase", 5);
    for &s in AcpiState::ALL {
        let _ = HostPhase::for_state(s);
    }
    assert_eq!(HostPhase::for_state(AcpiState::S5G2), HostPhase::Off);
}
