//! Sensor Data Records: the linear conversion between D-Bus values and 8-bit raw readings,
//! and the full (type 0x01) and compact (type 0x02) record bytes.

use super::platform::SensorSnapshot;

pub const SDR_VERSION: u8 = 0x51;
pub const FULL_SENSOR_RECORD: u8 = 0x01;
pub const COMPACT_SENSOR_RECORD: u8 = 0x02;
/// Header: record ID (2), version, type, length of the rest.
pub const HEADER_LEN: usize = 5;
/// The BMC's slave address, owner of every sensor here and generator of its own events.
pub const BMC_SLAVE_ADDR: u8 = 0x20;
pub const SENSOR_TYPE_TEMPERATURE: u8 = 0x01;
pub const SENSOR_TYPE_SYSTEM_ACPI_POWER_STATE: u8 = 0x22;
pub const EVENT_TYPE_THRESHOLD: u8 = 0x01;
pub const EVENT_TYPE_SENSOR_SPECIFIC: u8 = 0x6F;
pub const UNIT_DEGREES_C: u8 = 0x01;
/// Get Sensor Reading byte 2 flags.
pub const READING_EVENTS_ENABLED: u8 = 0x80;
pub const READING_SCANNING_ENABLED: u8 = 0x40;
pub const READING_UNAVAILABLE: u8 = 0x20;
/// Threshold bits (status byte of Get Sensor Reading, readable mask of the SDR and of Get
/// Sensor Thresholds share these positions).
pub const LNC: u8 = 1 << 0;
pub const LC: u8 = 1 << 1;
pub const LNR: u8 = 1 << 2;
pub const UNC: u8 = 1 << 3;
pub const UC: u8 = 1 << 4;
pub const UNR: u8 = 1 << 5;
/// Offsets of sensor type 0x22 a record can assert: 0x00–0x0C and 0x0E (no 0x0D).
pub const ACPI_OFFSET_MASK: u16 = 0x5FFF;
/// Where D-Bus gives no usable MinValue/MaxValue, a temperature spans what a signed byte
/// would (as upstream dbus-sdr defaults).
pub const DEFAULT_MIN: f64 = -128.0;
pub const DEFAULT_MAX: f64 = 127.0;

/// `y = (M·x + B·10^Bexp) · 10^Rexp` for raw `x` in 0..=255 (unsigned analog format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// 10-bit signed.
    pub m: i16,
    /// 10-bit signed.
    pub b: i16,
    /// 4-bit signed.
    pub r_exp: i8,
    /// 4-bit signed.
    pub b_exp: i8,
}

impl Linear {
    /// Factors that cover `[min, max]` with the finest step 8 bits allow. Non-finite or empty
    /// ranges fall back to the defaults.
    pub fn for_range(min: f64, max: f64) -> Self {
        let (min, max) = if min.is_finite() && max.is_finite() && max > min {
            (min, max)
        } else {
            (DEFAULT_MIN, DEFAULT_MAX)
        };
        let step = (max - min) / 255.0;
        // The smallest result exponent whose M still fits in 10 signed bits: finest steps.
        let mut pick = None;
        for r_exp in -8i8..=7 {
            let m = (step / pow10(r_exp) - 1e-9).ceil();
            if (1.0..=511.0).contains(&m) {
                pick = Some((m as i16, r_exp));
                break;
            }
        }
        let (m, r_exp) = pick.unwrap_or((511, 7));
        // B·10^Bexp = min / 10^Rexp, with B in 10 signed bits and the smallest Bexp.
        let target = min / pow10(r_exp);
        let mut b_pick = (0i16, 0i8);
        if target != 0.0 {
            for b_exp in -8i8..=7 {
                let b = (target / pow10(b_exp)).round();
                if (-512.0..=511.0).contains(&b) {
                    b_pick = (b as i16, b_exp);
                    break;
                }
            }
        }
        Self {
            m,
            b: b_pick.0,
            r_exp,
            b_exp: b_pick.1,
        }
    }

    pub fn to_value(&self, raw: u8) -> f64 {
        (f64::from(self.m) * f64::from(raw) + f64::from(self.b) * pow10(self.b_exp))
            * pow10(self.r_exp)
    }

    /// The raw reading nearest `value`, clamped to 0..=255; `None` for NaN.
    pub fn to_raw(&self, value: f64) -> Option<u8> {
        if value.is_nan() {
            return None;
        }
        let x =
            (value / pow10(self.r_exp) - f64::from(self.b) * pow10(self.b_exp)) / f64::from(self.m);
        Some(x.round().clamp(0.0, 255.0) as u8)
    }

    /// Bytes 25..=30 of a full record (M, M/tolerance, B, B/accuracy, accuracy/direction,
    /// R/B exponents).
    fn bytes(&self) -> [u8; 6] {
        let m = (self.m as u16) & 0x3FF;
        let b = (self.b as u16) & 0x3FF;
        [
            (m & 0xFF) as u8,
            ((m >> 8) as u8) << 6,
            (b & 0xFF) as u8,
            ((b >> 8) as u8) << 6,
            0,
            (((self.r_exp as u8) & 0x0F) << 4) | ((self.b_exp as u8) & 0x0F),
        ]
    }
}

fn pow10(e: i8) -> f64 {
    10f64.powi(i32::from(e))
}

/// The ID string field: type/length byte (8-bit ASCII+Latin-1) and at most 16 bytes.
fn id_string(name: &str) -> Vec<u8> {
    let bytes: Vec<u8> = name.bytes().take(16).collect();
    let mut out = vec![0xC0 | bytes.len() as u8];
    out.extend_from_slice(&bytes);
    out
}

fn header(record_id: u16, record_type: u8, body_len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + body_len);
    v.extend_from_slice(&record_id.to_le_bytes());
    v.push(SDR_VERSION);
    v.push(record_type);
    v.push(body_len as u8);
    v
}

/// Record IDs follow sensor numbers, so they are as stable as the numbers.
pub fn record_id_for(sensor_number: u8) -> u16 {
    u16::from(sensor_number)
}

/// The thresholds of a sensor that exist (finite), as (bit, value) pairs.
pub fn thresholds(s: &SensorSnapshot) -> [(u8, f64); 4] {
    [
        (LNC, s.warning_low),
        (LC, s.critical_low),
        (UNC, s.warning_high),
        (UC, s.critical_high),
    ]
}

/// The readable-threshold mask of a sensor.
pub fn readable_mask(s: &SensorSnapshot) -> u8 {
    thresholds(s)
        .iter()
        .filter(|(_, v)| v.is_finite())
        .fold(0, |m, (bit, _)| m | bit)
}

/// A type 1 full sensor record for a temperature sensor.
pub fn full_temperature_record(number: u8, entity: (u8, u8), s: &SensorSnapshot) -> Vec<u8> {
    let lin = Linear::for_range(s.min, s.max);
    let raw = |v: f64| {
        if v.is_finite() {
            lin.to_raw(v).unwrap_or(0)
        } else {
            0
        }
    };
    let readable = readable_mask(s);
    let lower = u16::from(readable & (LNC | LC | LNR)) << 12;
    let upper = u16::from((readable & (UNC | UC | UNR)) >> 3) << 12;
    let id = id_string(s.name());
    let mut body = Vec::with_capacity(43 + id.len());
    body.push(BMC_SLAVE_ADDR); // owner ID
    body.push(0x00); // owner LUN 0, channel 0
    body.push(number);
    body.push(entity.0);
    body.push(entity.1);
    // Initialisation: init scanning and events; events and scanning enabled by default.
    body.push(0x63);
    // Capabilities: auto re-arm, no hysteresis, thresholds readable (not settable), no
    // event message control (this BMC sends no threshold events).
    body.push(0x40 | (0b01 << 2) | 0b11);
    body.push(SENSOR_TYPE_TEMPERATURE);
    body.push(EVENT_TYPE_THRESHOLD);
    body.extend_from_slice(&lower.to_le_bytes()); // assertion events: none; lower reading mask
    body.extend_from_slice(&upper.to_le_bytes()); // deassertion events: none; upper mask
    body.push(readable); // readable threshold mask
    body.push(0x00); // settable threshold mask
    body.push(0x00); // units 1: unsigned analog, no rate, no modifier, not a percentage
    body.push(UNIT_DEGREES_C);
    body.push(0x00); // modifier unit
    body.push(0x00); // linearization: linear
    body.extend_from_slice(&lin.bytes());
    body.push(0x00); // analog characteristics: no nominal/normal values given
    body.extend_from_slice(&[0, 0, 0]); // nominal, normal max, normal min
    body.push(0xFF); // sensor maximum reading (raw)
    body.push(0x00); // sensor minimum reading (raw)
    body.push(0x00); // UNR: none on D-Bus
    body.push(raw(s.critical_high));
    body.push(raw(s.warning_high));
    body.push(0x00); // LNR
    body.push(raw(s.critical_low));
    body.push(raw(s.warning_low));
    body.extend_from_slice(&[0, 0]); // hysteresis +/-
    body.extend_from_slice(&[0, 0]); // reserved
    body.push(0x00); // OEM
    body.extend_from_slice(&id);
    let mut rec = header(record_id_for(number), FULL_SENSOR_RECORD, body.len());
    rec.extend_from_slice(&body);
    rec
}

/// A type 2 compact record for the "System ACPI Power State" sensor (type 0x22, 0x6F).
pub fn compact_acpi_record(number: u8, entity: (u8, u8), name: &str) -> Vec<u8> {
    let id = id_string(name);
    let mut body = Vec::with_capacity(27 + id.len());
    body.push(BMC_SLAVE_ADDR);
    body.push(0x00);
    body.push(number);
    body.push(entity.0);
    body.push(entity.1);
    body.push(0x63);
    body.push(0x40 | 0b11); // auto re-arm, no thresholds, no event message control
    body.push(SENSOR_TYPE_SYSTEM_ACPI_POWER_STATE);
    body.push(EVENT_TYPE_SENSOR_SPECIFIC);
    body.extend_from_slice(&ACPI_OFFSET_MASK.to_le_bytes()); // assertion event mask
    body.extend_from_slice(&0u16.to_le_bytes()); // deassertion event mask
    body.extend_from_slice(&ACPI_OFFSET_MASK.to_le_bytes()); // discrete reading mask
    body.extend_from_slice(&[0xC0, 0x00, 0x00]); // units: no analog reading, unitless
    body.extend_from_slice(&[0x00, 0x00]); // record sharing: one sensor
    body.extend_from_slice(&[0, 0]); // hysteresis
    body.extend_from_slice(&[0, 0, 0]); // reserved
    body.push(0x00); // OEM
    body.extend_from_slice(&id);
    let mut rec = header(record_id_for(number), COMPACT_SENSOR_RECORD, body.len());
    rec.extend_from_slice(&body);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_range_is_one_degree_per_count_from_minus_128() {
        let l = Linear::for_range(f64::NEG_INFINITY, f64::INFINITY);
        assert_eq!(
            l,
            Linear {
                m: 100,
                b: -128,
                r_exp: -2,
                b_exp: 2
            }
        );
        assert_eq!(l.to_raw(-128.0), Some(0));
        assert_eq!(l.to_raw(25.0), Some(153));
        assert!((l.to_value(153) - 25.0).abs() < 1e-9);
        assert_eq!(l.to_raw(1000.0), Some(255));
        assert_eq!(l.to_raw(f64::NAN), None);
    }

    #[test]
    fn ranges_round_trip_within_one_step() {
        for (min, max) in [
            (0.0, 127.0),
            (-40.0, 125.0),
            (0.0, 1.0),
            (10.0, 11000.0),
            (-60.0, 300.0),
            (0.0, 255.0),
        ] {
            let l = Linear::for_range(min, max);
            assert!((-512..=511).contains(&l.m) && l.m > 0, "{l:?}");
            assert!((-512..=511).contains(&l.b), "{l:?}");
            assert!((-8..=7).contains(&l.r_exp) && (-8..=7).contains(&l.b_exp));
            let step = f64::from(l.m) * pow10(l.r_exp);
            assert!((l.to_value(0) - min).abs() <= step, "{min} {max} {l:?}");
            assert!(l.to_value(255) >= max - step, "{min} {max} {l:?}");
            for i in 0..=20 {
                let v = min + (max - min) * f64::from(i) / 20.0;
                let raw = l.to_raw(v).expect("finite");
                assert!(
                    (l.to_value(raw) - v).abs() <= step / 2.0 + 1e-9,
                    "{v} {l:?}"
                );
            }
        }
    }

    #[test]
    fn factor_bytes_pack_ten_bit_twos_complement() {
        let l = Linear {
            m: 100,
            b: -128,
            r_exp: -2,
            b_exp: 2,
        };
        // B = -128 → 0x380 (10-bit): LS 0x80, MS bits 0b11 in 7:6.
        assert_eq!(l.bytes(), [100, 0x00, 0x80, 0xC0, 0x00, 0xE2]);
    }

    #[test]
    fn full_record_golden_bytes() {
        let mut s = SensorSnapshot::new("/xyz/openbmc_project/sensors/temperature/DIMM_A0", 30.0);
        s.min = -128.0;
        s.max = 127.0;
        s.warning_high = 85.0;
        s.critical_high = 95.0;
        let r = full_temperature_record(0x05, (0x20, 0x01), &s);
        let expected: Vec<u8> = [
            &[0x05, 0x00, 0x51, 0x01, 43 + 7][..],
            &[0x20, 0x00, 0x05, 0x20, 0x01, 0x63, 0x47, 0x01, 0x01],
            &[0x00, 0x00, 0x00, 0x30, 0x18, 0x00],
            &[0x00, 0x01, 0x00, 0x00],
            &[100, 0x00, 0x80, 0xC0, 0x00, 0xE2],
            &[0x00, 0, 0, 0, 0xFF, 0x00],
            &[0x00, 223, 213, 0x00, 0x00, 0x00],
            &[0, 0, 0, 0, 0x00],
            &[0xC7],
            b"DIMM_A0",
        ]
        .concat();
        assert_eq!(r, expected);
    }

    #[test]
    fn id_string_is_cut_to_sixteen_bytes() {
        let s = SensorSnapshot::new(
            "/xyz/openbmc_project/sensors/temperature/A_Very_Long_Sensor_Name",
            1.0,
        );
        let r = full_temperature_record(1, (7, 1), &s);
        assert_eq!(r[47], 0xC0 | 16);
        assert_eq!(&r[48..], b"A_Very_Long_Sens");
        assert_eq!(usize::from(r[4]), r.len() - HEADER_LEN);
    }

    #[test]
    fn compact_acpi_record_golden_bytes() {
        let r = compact_acpi_record(0x01, (0x07, 0x01), "ACPI_STATUS");
        let expected: Vec<u8> = [
            &[0x01, 0x00, 0x51, 0x02, 27 + 11][..],
            &[0x20, 0x00, 0x01, 0x07, 0x01, 0x63, 0x43, 0x22, 0x6F],
            &[0xFF, 0x5F, 0x00, 0x00, 0xFF, 0x5F],
            &[0xC0, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0x00],
            &[0xCB],
            b"ACPI_STATUS",
        ]
        .concat();
        assert_eq!(r, expected);
    }
}
