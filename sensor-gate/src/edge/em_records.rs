//! entity-manager's `AcpigateDimmTemp` records, as entity-manager publishes them, read into
//! sensors (`"sensors_from": "entity-manager"`).
//!
//! An Exposes record of `"Type": "AcpigateDimmTemp"` (a type of our own: dbus-sensors'
//! hwmontempsensor claims `JC42` records and reads them ungated) becomes, on entity-manager's
//! ObjectManager at `/xyz/openbmc_project/inventory`, an object
//! `/xyz/openbmc_project/inventory/system/<board type>/<Board>/<Record>` with the interface
//! `xyz.openbmc_project.Configuration.AcpigateDimmTemp`, and each threshold an interface
//! `….AcpigateDimmTemp.Thresholds<i>` on the same object (openbmc/entity-manager 3b745d22,
//! `postExposesRecordsToDBus`, `postConfigurationRecord`). The shapes that decide the parsing:
//! a JSON number is published as `t` (`x` if negative, `d` if it has a fraction), a string
//! that reads as a number (`"0x18"`, `"12"`) as `t` (`templateCharReplace`), and every number
//! of a writable sub-object — `Thresholds` is one — as `d` (`getDBusType`). So every number
//! here is taken from any numeric type, as dbus-sensors' visitors take them.
//!
//! Fields: `Name` (spaces become `_`, as dbus-sensors' `escapeName` does), `DeviceType`
//! (`JC42` or `SPD5118`, any case), `Bus`, `Address`, optional `MinValue`/`MaxValue`,
//! `PowerState` (`On`, `BiosPost`, `ChassisOn` or absent: host-powered; `Always`: not) and
//! the thresholds (`Direction` `greater than`/`less than`, `Severity` 0 warning or 1
//! critical, `Value`, optional `Hysteresis`; dbus-sensors fc2953c5, `Thresholds.cpp`). Other
//! keys are left alone: records commonly carry keys meant for other readers.
//!
//! Everything here is pure: objects in, records and the reasons for refusals out.

use std::collections::{BTreeMap, HashMap, HashSet};

use openbmc_vocab::names::{iface, path};
use zbus::{OwnedVariant, Variant};

use super::config::{DEFAULT_HYSTERESIS, checked_thresholds};
use crate::core::Thresholds;
use crate::core::decode::DeviceKind;

/// One object's interfaces: interface → property → value.
pub type Interfaces = BTreeMap<String, HashMap<String, OwnedVariant>>;

/// entity-manager's objects as `GetManagedObjects` gives them: path → interfaces.
pub type Objects = BTreeMap<String, Interfaces>;

// The record's keys, spelled as in the board files.
const NAME: &str = "Name";
const DEVICE_TYPE: &str = "DeviceType";
const BUS: &str = "Bus";
const ADDRESS: &str = "Address";
const MIN_VALUE: &str = "MinValue";
const MAX_VALUE: &str = "MaxValue";
const POWER_STATE: &str = "PowerState";
// A threshold's keys and values (dbus-sensors `parseThresholdsFromConfig`).
const THRESHOLDS: &str = "Thresholds";
const DIRECTION: &str = "Direction";
const SEVERITY: &str = "Severity";
const VALUE: &str = "Value";
const HYSTERESIS: &str = "Hysteresis";
const GREATER_THAN: &str = "greater than";
const LESS_THAN: &str = "less than";

/// One sensor as its record describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's object path (named in every log line about it).
    pub path: String,
    /// The record's parent: the board object its sensor is associated with.
    pub board: String,
    pub name: String,
    pub kind: DeviceKind,
    pub bus: u32,
    pub address: u8,
    pub min: f64,
    pub max: f64,
    pub host_powered: bool,
    pub thresholds: Thresholds,
}

impl Record {
    /// The same sensor apart from its thresholds (which change in place).
    pub fn same_sensor(&self, other: &Record) -> bool {
        Record {
            thresholds: other.thresholds,
            ..self.clone()
        } == *other
    }
}

/// What the objects hold: the good records, by name, and what was refused or left out.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    pub records: BTreeMap<String, Record>,
    /// One line per refused record, naming the record and the field.
    pub refused: Vec<String>,
    /// One line per part of a record left out (a threshold severity not served).
    pub ignored: Vec<String>,
}

/// Every `AcpigateDimmTemp` record in `objects`, in path order. Of two records with one
/// name or one bus and address, the one whose path sorts first is kept.
pub fn select(objects: &Objects) -> Selection {
    let mut sel = Selection::default();
    let mut places = HashMap::new();
    for (p, interfaces) in objects {
        if !interfaces.contains_key(iface::ACPIGATE_DIMM_TEMP_RECORD) {
            continue;
        }
        let mut ignored = Vec::new();
        let r = match parse(p, interfaces, &mut ignored) {
            Ok(r) => r,
            Err(why) => {
                sel.refused.push(refusal(p, &why));
                continue;
            }
        };
        if let Some(other) = sel.records.get(&r.name) {
            let why = format!("{NAME}: `{}` is also the name of {}", r.name, other.path);
            sel.refused.push(refusal(p, &why));
            continue;
        }
        if let Some(other) = places.get(&(r.bus, r.address)) {
            let why = format!(
                "{ADDRESS}: {:#04x} on bus {} is also the address of {other}",
                r.address, r.bus
            );
            sel.refused.push(refusal(p, &why));
            continue;
        }
        sel.ignored
            .extend(ignored.into_iter().map(|i| format!("record {p}: {i}")));
        places.insert((r.bus, r.address), p.clone());
        sel.records.insert(r.name.clone(), r);
    }
    sel
}

/// What a new set of records changes for the sensors served from the previous one.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Sensors to remove whole: their record is gone, or changed in more than thresholds.
    pub remove: Vec<String>,
    /// Sensors whose thresholds alone changed: changed in place, no interface added.
    pub thresholds: Vec<Record>,
    /// Sensors to create whole (new, or re-created after a change).
    pub add: Vec<Record>,
}

/// The changes from `live` (name → record served) to `new`; a sensor whose record did not
/// change appears nowhere, so it is never touched.
pub fn changes<'a>(
    live: impl IntoIterator<Item = &'a Record>,
    new: &BTreeMap<String, Record>,
) -> Changes {
    let mut c = Changes::default();
    let mut kept = HashSet::new();
    for old in live {
        match new.get(&old.name) {
            Some(r) if old.same_sensor(r) => {
                kept.insert(old.name.clone());
                if old.thresholds != r.thresholds {
                    c.thresholds.push(r.clone());
                }
            }
            _ => c.remove.push(old.name.clone()),
        }
    }
    c.add = new
        .values()
        .filter(|r| !kept.contains(&r.name))
        .cloned()
        .collect();
    c
}

fn refusal(p: &str, why: &str) -> String {
    format!("record {p}: {why}; the record is not used")
}

fn parse(p: &str, interfaces: &Interfaces, ignored: &mut Vec<String>) -> Result<Record, String> {
    let main = &interfaces[iface::ACPIGATE_DIMM_TEMP_RECORD];
    let field = |key: &str| main.get(key).map(|v| &**v);
    let required = |key: &str| field(key).ok_or_else(|| format!("{key}: missing"));

    let raw_name = string(required(NAME)?).ok_or_else(|| format!("{NAME}: not a string"))?;
    let name = raw_name.replace(' ', "_");
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "{NAME}: `{raw_name}` must be letters, digits, spaces and _ (it becomes an \
             object path)"
        ));
    }
    let kind_name =
        string(required(DEVICE_TYPE)?).ok_or_else(|| format!("{DEVICE_TYPE}: not a string"))?;
    let kind = DeviceKind::from_config_name(&kind_name.to_ascii_lowercase()).ok_or_else(|| {
        format!("{DEVICE_TYPE}: `{kind_name}` is not JC42 (DDR4) or SPD5118 (DDR5)")
    })?;
    let bus = unsigned(required(BUS)?)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or_else(|| format!("{BUS}: not a bus number"))?;
    let range = kind.addresses();
    let address = unsigned(required(ADDRESS)?)
        .and_then(|a| u8::try_from(a).ok())
        .filter(|a| range.contains(a))
        .ok_or_else(|| {
            format!(
                "{ADDRESS}: not a {kind_name} address ({:#04x}–{:#04x})",
                range.start(),
                range.end()
            )
        })?;
    let (rmin, rmax) = kind.representable();
    let bound = |key: &str, default: f64| match field(key) {
        None => Ok(default),
        Some(v) => number(v).ok_or_else(|| format!("{key}: not a number")),
    };
    let (min, max) = (bound(MIN_VALUE, rmin)?, bound(MAX_VALUE, rmax)?);
    if !(min.is_finite() && max.is_finite() && min < max) {
        return Err(format!(
            "{MIN_VALUE}/{MAX_VALUE}: {min} must be below {max}"
        ));
    }
    let host_powered = match field(POWER_STATE) {
        None => true,
        Some(v) => match string(v).as_deref() {
            Some("On" | "BiosPost" | "ChassisOn") => true,
            Some("Always") => false,
            _ => {
                return Err(format!(
                    "{POWER_STATE}: must be On, BiosPost, ChassisOn or Always"
                ));
            }
        },
    };
    let thresholds = thresholds(interfaces, ignored)?;
    let board = p
        .rsplit_once('/')
        .map(|(parent, _)| parent)
        .filter(|parent| {
            parent.len() > path::INVENTORY.len() && parent.starts_with(path::INVENTORY)
        })
        .ok_or_else(|| format!("the record is not below a board in {}", path::INVENTORY))?;
    Ok(Record {
        path: p.to_owned(),
        board: board.to_owned(),
        name,
        kind,
        bus,
        address,
        min,
        max,
        host_powered,
        thresholds,
    })
}

/// The record's `Thresholds<i>` interfaces, in index order.
fn thresholds(interfaces: &Interfaces, ignored: &mut Vec<String>) -> Result<Thresholds, String> {
    let prefix = format!("{}.{THRESHOLDS}", iface::ACPIGATE_DIMM_TEMP_RECORD);
    let mut found: Vec<(u32, &HashMap<String, OwnedVariant>)> = interfaces
        .iter()
        .filter_map(|(name, props)| {
            let index = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((index, props))
        })
        .collect();
    found.sort_by_key(|(i, _)| *i);
    let mut t = Thresholds {
        hysteresis: DEFAULT_HYSTERESIS,
        ..Thresholds::default()
    };
    let mut hysteresis: Option<f64> = None;
    let mut seen = HashSet::new();
    for (i, props) in found {
        let key = |k: &str| format!("{THRESHOLDS}{i}.{k}");
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| &**v)
                .ok_or_else(|| format!("{}: missing", key(k)))
        };
        let direction = string(get(DIRECTION)?);
        let high = match direction.as_deref() {
            Some(GREATER_THAN) => true,
            Some(LESS_THAN) => false,
            _ => {
                return Err(format!(
                    "{}: must be `{GREATER_THAN}` or `{LESS_THAN}`",
                    key(DIRECTION)
                ));
            }
        };
        let severity =
            unsigned(get(SEVERITY)?).ok_or_else(|| format!("{}: not a number", key(SEVERITY)))?;
        let value = number(get(VALUE)?)
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{}: not a finite number", key(VALUE)))?;
        if let Some(h) = props.get(HYSTERESIS) {
            let h = number(h)
                .filter(|h| h.is_finite() && *h >= 0.0)
                .ok_or_else(|| format!("{}: not a number >= 0", key(HYSTERESIS)))?;
            // One hysteresis per sensor: the widest asked for.
            hysteresis = Some(hysteresis.map_or(h, |old| old.max(h)));
        }
        let slot = match (severity, high) {
            (0, true) => &mut t.warning_high,
            (0, false) => &mut t.warning_low,
            (1, true) => &mut t.critical_high,
            (1, false) => &mut t.critical_low,
            (2..=4, _) => {
                ignored.push(format!(
                    "{}: {severity} (performance loss, soft or hard shutdown) is not served by \
                     sensor-gate; that threshold is left out",
                    key(SEVERITY)
                ));
                continue;
            }
            _ => {
                return Err(format!(
                    "{}: {severity} is not 0 (warning) or 1 (critical)",
                    key(SEVERITY)
                ));
            }
        };
        if !seen.insert((severity, high)) {
            return Err(format!(
                "{THRESHOLDS}{i}: a second {} {} threshold",
                if severity == 0 { "warning" } else { "critical" },
                if high { "high" } else { "low" }
            ));
        }
        *slot = Some(value);
    }
    if let Some(h) = hysteresis {
        t.hysteresis = h;
    }
    checked_thresholds(t).map_err(|why| format!("{THRESHOLDS}: {why}"))
}

/// A string, as entity-manager publishes text.
fn string(v: &Variant<'_>) -> Option<String> {
    match v {
        Variant::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Any number entity-manager may publish, as a double.
fn number(v: &Variant<'_>) -> Option<f64> {
    Some(match v {
        Variant::U8(x) => f64::from(*x),
        Variant::I16(x) => f64::from(*x),
        Variant::U16(x) => f64::from(*x),
        Variant::I32(x) => f64::from(*x),
        Variant::U32(x) => f64::from(*x),
        // Exact for every value a sensor limit can take.
        Variant::I64(x) => *x as f64,
        Variant::U64(x) => *x as f64,
        Variant::F64(x) => *x,
        _ => return None,
    })
}

/// A whole non-negative number: any integer type, a double without fraction (a writable
/// sub-object's numbers), or a string entity-manager would have turned into one.
fn unsigned(v: &Variant<'_>) -> Option<u64> {
    match v {
        Variant::U8(x) => Some(u64::from(*x)),
        Variant::U16(x) => Some(u64::from(*x)),
        Variant::U32(x) => Some(u64::from(*x)),
        Variant::U64(x) => Some(*x),
        Variant::I16(x) => u64::try_from(*x).ok(),
        Variant::I32(x) => u64::try_from(*x).ok(),
        Variant::I64(x) => u64::try_from(*x).ok(),
        Variant::F64(x) if x.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(x) => {
            Some(*x as u64)
        }
        Variant::Str(s) => {
            let s = s.as_str();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::edge) const BOARD: &str =
        "/xyz/openbmc_project/inventory/system/board/Acme_Board";

    fn s(x: &str) -> OwnedVariant {
        OwnedVariant::from(zbus::Str::from(x.to_owned()))
    }

    /// A record as entity-manager publishes `{"Name": "DIMM A0 Temp", "DeviceType": "JC42",
    /// "Bus": 3, "Address": "0x18", "Thresholds": [warning 85, critical 95 (hysteresis 2)]}`:
    /// `Bus` and `Address` as `t`, the thresholds' numbers as `d`.
    pub(in crate::edge) fn published(name: &str, address: u64) -> Interfaces {
        let main: HashMap<String, OwnedVariant> = [
            (NAME, s(name)),
            ("Type", s("AcpigateDimmTemp")),
            (DEVICE_TYPE, s("JC42")),
            (BUS, OwnedVariant::from(3u64)),
            (ADDRESS, OwnedVariant::from(address)),
            (POWER_STATE, s("On")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let threshold =
            |severity: f64, value: f64, hysteresis: f64| -> HashMap<String, OwnedVariant> {
                [
                    (DIRECTION, s(GREATER_THAN)),
                    ("Name", s("upper")),
                    (SEVERITY, OwnedVariant::from(severity)),
                    (VALUE, OwnedVariant::from(value)),
                    (HYSTERESIS, OwnedVariant::from(hysteresis)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
            };
        let t = |i: u32| format!("{}.{THRESHOLDS}{i}", iface::ACPIGATE_DIMM_TEMP_RECORD);
        [
            (iface::ACPIGATE_DIMM_TEMP_RECORD.to_owned(), main),
            (t(0), threshold(0.0, 85.0, 1.0)),
            (t(1), threshold(1.0, 95.0, 2.0)),
        ]
        .into_iter()
        .collect()
    }

    fn objects(records: &[(&str, Interfaces)]) -> Objects {
        records
            .iter()
            .map(|(name, r)| (format!("{BOARD}/{name}"), r.clone()))
            .collect()
    }

    #[test]
    fn a_record_in_entity_manager_s_shapes_reads_as_its_sensor() {
        let sel = select(&objects(&[(
            "DIMM_A0_Temp",
            published("DIMM A0 Temp", 0x18),
        )]));
        assert!(sel.refused.is_empty() && sel.ignored.is_empty(), "{sel:?}");
        let r = &sel.records["DIMM_A0_Temp"];
        assert_eq!(r.board, BOARD, "the board is the record's parent");
        assert_eq!(r.path, format!("{BOARD}/DIMM_A0_Temp"));
        assert_eq!((r.kind, r.bus, r.address), (DeviceKind::Jc42, 3, 0x18));
        assert_eq!((r.min, r.max), DeviceKind::Jc42.representable());
        assert!(r.host_powered);
        assert_eq!(
            r.thresholds,
            Thresholds {
                warning_high: Some(85.0),
                critical_high: Some(95.0),
                warning_low: None,
                critical_low: None,
                hysteresis: 2.0,
            }
        );
    }

    #[test]
    fn objects_of_other_types_are_not_looked_at() {
        let mut other = published("TMP", 0x18);
        let main = other
            .remove(iface::ACPIGATE_DIMM_TEMP_RECORD)
            .expect("main");
        other.insert("xyz.openbmc_project.Configuration.TMP75".to_owned(), main);
        let sel = select(&objects(&[("TMP", other)]));
        assert_eq!(sel, Selection::default());
    }

    /// Change one field of the main interface (None: remove it).
    fn with(key: &str, v: Option<OwnedVariant>) -> Interfaces {
        let mut r = published("DIMM A0 Temp", 0x18);
        let main = r.get_mut(iface::ACPIGATE_DIMM_TEMP_RECORD).expect("main");
        match v {
            Some(v) => main.insert(key.to_owned(), v),
            None => main.remove(key),
        };
        r
    }

    fn threshold_with(i: u32, key: &str, v: Option<OwnedVariant>) -> Interfaces {
        let mut r = published("DIMM A0 Temp", 0x18);
        let t = r
            .get_mut(&format!(
                "{}.{THRESHOLDS}{i}",
                iface::ACPIGATE_DIMM_TEMP_RECORD
            ))
            .expect("threshold");
        match v {
            Some(v) => t.insert(key.to_owned(), v),
            None => t.remove(key),
        };
        r
    }

    #[test]
    fn every_numeric_shape_is_taken() {
        for (v, want) in [
            (OwnedVariant::from(0x19u64), 0x19),
            (OwnedVariant::from(0x19i64), 0x19),
            (OwnedVariant::from(0x19u32), 0x19),
            (OwnedVariant::from(25.0f64), 0x19),
            (s("0x19"), 0x19),
            (s("25"), 0x19),
        ] {
            let sel = select(&objects(&[("A", with(ADDRESS, Some(v.clone())))]));
            assert_eq!(
                sel.records.get("DIMM_A0_Temp").map(|r| r.address),
                Some(want),
                "{v:?}: {sel:?}"
            );
        }
    }

    #[test]
    fn a_bad_record_is_refused_naming_the_record_and_the_field_and_the_others_stay() {
        let cases: Vec<(Interfaces, &str)> = vec![
            (with(NAME, None), "Name: missing"),
            (with(NAME, Some(s("DIMM/A0"))), "Name: `DIMM/A0`"),
            (
                with(NAME, Some(OwnedVariant::from(3u64))),
                "Name: not a string",
            ),
            (with(DEVICE_TYPE, Some(s("TMP75"))), "DeviceType: `TMP75`"),
            (with(DEVICE_TYPE, None), "DeviceType: missing"),
            (
                with(BUS, Some(OwnedVariant::from(-1i64))),
                "Bus: not a bus number",
            ),
            (
                with(BUS, Some(OwnedVariant::from(2.5f64))),
                "Bus: not a bus number",
            ),
            (
                with(ADDRESS, Some(OwnedVariant::from(0x50u64))),
                "Address: not a JC42 address (0x18–0x1f)",
            ),
            (
                with(ADDRESS, Some(s("0xZZ"))),
                "Address: not a JC42 address",
            ),
            (with(MAX_VALUE, Some(s("hot"))), "MaxValue: not a number"),
            (
                with(MIN_VALUE, Some(OwnedVariant::from(300u64))),
                "MinValue/MaxValue: 300 must be below",
            ),
            (
                with(POWER_STATE, Some(s("Sometimes"))),
                "PowerState: must be On, BiosPost, ChassisOn or Always",
            ),
            (
                threshold_with(1, DIRECTION, Some(s("above"))),
                "Thresholds1.Direction: must be",
            ),
            (threshold_with(0, VALUE, None), "Thresholds0.Value: missing"),
            (
                threshold_with(0, VALUE, Some(OwnedVariant::from(f64::NAN))),
                "Thresholds0.Value: not a finite number",
            ),
            (
                threshold_with(0, SEVERITY, Some(OwnedVariant::from(7.0f64))),
                "Thresholds0.Severity: 7 is not 0",
            ),
            (
                threshold_with(0, SEVERITY, Some(OwnedVariant::from(1.0f64))),
                "Thresholds1: a second critical high",
            ),
            (
                threshold_with(0, HYSTERESIS, Some(OwnedVariant::from(-1.0f64))),
                "Thresholds0.Hysteresis: not a number >= 0",
            ),
            // Warning above critical.
            (
                threshold_with(0, VALUE, Some(OwnedVariant::from(99.0f64))),
                "Thresholds: thresholds must be finite, warning within critical",
            ),
        ];
        for (bad, want) in cases {
            let sel = select(&objects(&[
                ("DIMM_A0_Temp", bad),
                ("DIMM_A1_Temp", published("DIMM A1 Temp", 0x19)),
            ]));
            let line = format!("record {BOARD}/DIMM_A0_Temp: {want}");
            assert_eq!(sel.refused.len(), 1, "{want}: {sel:?}");
            assert!(
                sel.refused[0].starts_with(&line),
                "{:?} does not start with {line:?}",
                sel.refused[0]
            );
            assert!(
                sel.refused[0].ends_with("; the record is not used"),
                "{sel:?}"
            );
            assert_eq!(
                sel.records.keys().collect::<Vec<_>>(),
                ["DIMM_A1_Temp"],
                "{want}"
            );
        }
    }

    #[test]
    fn power_state_says_whether_the_host_powers_the_part() {
        for (state, powered) in [
            ("On", true),
            ("BiosPost", true),
            ("ChassisOn", true),
            ("Always", false),
        ] {
            let sel = select(&objects(&[("A", with(POWER_STATE, Some(s(state))))]));
            assert_eq!(sel.records["DIMM_A0_Temp"].host_powered, powered, "{state}");
        }
        let sel = select(&objects(&[("A", with(POWER_STATE, None))]));
        assert!(
            sel.records["DIMM_A0_Temp"].host_powered,
            "absent: host-powered"
        );
    }

    #[test]
    fn an_unserved_severity_is_left_out_and_said() {
        let sel = select(&objects(&[(
            "DIMM_A0_Temp",
            threshold_with(1, SEVERITY, Some(OwnedVariant::from(3.0f64))),
        )]));
        let r = &sel.records["DIMM_A0_Temp"];
        assert_eq!(r.thresholds.critical_high, None);
        assert_eq!(r.thresholds.warning_high, Some(85.0));
        assert_eq!(sel.ignored.len(), 1, "{sel:?}");
        assert!(
            sel.ignored[0].contains("Thresholds1.Severity: 3"),
            "{sel:?}"
        );
    }

    #[test]
    fn of_two_records_with_one_name_or_one_address_the_first_path_is_kept() {
        let sel = select(&objects(&[
            ("A", published("DIMM A0 Temp", 0x18)),
            ("B", published("DIMM_A0_Temp", 0x19)),
            ("C", published("DIMM A2 Temp", 0x18)),
        ]));
        assert_eq!(sel.records.keys().collect::<Vec<_>>(), ["DIMM_A0_Temp"]);
        assert_eq!(sel.records["DIMM_A0_Temp"].path, format!("{BOARD}/A"));
        assert_eq!(sel.refused.len(), 2, "{sel:?}");
        assert!(
            sel.refused[0].contains(&format!(
                "{BOARD}/B: Name: `DIMM_A0_Temp` is also the name of {BOARD}/A"
            )),
            "{sel:?}"
        );
        assert!(
            sel.refused[1].contains(&format!(
                "{BOARD}/C: Address: 0x18 on bus 3 is also the address of {BOARD}/A"
            )),
            "{sel:?}"
        );
    }

    #[test]
    fn only_a_threshold_change_is_the_same_sensor() {
        let sel = select(&objects(&[("A", published("DIMM A0 Temp", 0x18))]));
        let a = sel.records["DIMM_A0_Temp"].clone();
        let mut b = a.clone();
        b.thresholds.warning_high = Some(80.0);
        assert!(a.same_sensor(&b));
        b.address = 0x19;
        assert!(!a.same_sensor(&b));
    }

    #[test]
    fn only_what_changed_is_removed_added_or_changed_in_place() {
        let sel = select(&objects(&[
            ("A0", published("DIMM A0", 0x18)),
            ("A1", published("DIMM A1", 0x19)),
            ("A2", published("DIMM A2", 0x1a)),
        ]));
        let live: Vec<Record> = sel.records.values().cloned().collect();
        let mut new = sel.records.clone();
        assert_eq!(
            changes(&live, &new),
            Changes::default(),
            "unchanged: untouched"
        );
        new.remove("DIMM_A0");
        if let Some(r) = new.get_mut("DIMM_A1") {
            r.thresholds.warning_high = Some(80.0);
        }
        if let Some(r) = new.get_mut("DIMM_A2") {
            r.address = 0x1b;
        }
        let more = select(&objects(&[("B0", published("DIMM B0", 0x1c))]));
        new.extend(more.records);
        let c = changes(&live, &new);
        assert_eq!(c.remove, ["DIMM_A0", "DIMM_A2"]);
        assert_eq!(
            c.thresholds
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["DIMM_A1"]
        );
        assert_eq!(
            c.add.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["DIMM_A2", "DIMM_B0"]
        );
    }
}
