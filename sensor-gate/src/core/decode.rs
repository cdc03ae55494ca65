//! DIMM thermal sensor register facts and decoding. Pure functions, no I/O.
//!
//! * DDR4 — JEDEC JC-42.4 TSOD (TSE2004av), SMBus 0x18–0x1F. Ambient temperature register
//!   0x05 is 16 bits, most significant byte first on the wire. SMBus read-word delivers the
//!   first byte as the low byte, so the word arrives byte-swapped. Bits 12:0 are a 13-bit
//!   two's complement value in 0.0625 °C steps; bits 15:13 are alarm flags (ignored here:
//!   the thresholds are ours, not the TSOD's).
//! * DDR5 — SPD5118 hub with an integrated sensor, SMBus 0x50–0x57. Temperature is MR49 (low
//!   byte) and MR50 (high byte) at 0x31/0x32, least significant byte first, so SMBus
//!   read-word at 0x31 delivers it as is. Bits 12:2 are an 11-bit two's complement value in
//!   0.25 °C steps. (Checked against the Linux `spd5118` hwmon driver: register 0x31,
//!   `sign_extend32(reg >> 2, 10)` times 250 m°C; MR0:MR1 identify the part as 0x5118.)

use std::ops::RangeInclusive;

/// The kind of temperature sensor at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// DDR4 JC-42.4 TSOD.
    Jc42,
    /// DDR5 SPD5118 hub sensor.
    Spd5118,
}

impl DeviceKind {
    /// The configuration file's name for the kind.
    pub fn config_name(self) -> &'static str {
        match self {
            Self::Jc42 => "jc42",
            Self::Spd5118 => "spd5118",
        }
    }

    pub fn from_config_name(s: &str) -> Option<Self> {
        match s {
            "jc42" => Some(Self::Jc42),
            "spd5118" => Some(Self::Spd5118),
            _ => None,
        }
    }

    /// The 7-bit SMBus addresses this kind can sit at.
    pub fn addresses(self) -> RangeInclusive<u8> {
        match self {
            Self::Jc42 => 0x18..=0x1F,
            Self::Spd5118 => 0x50..=0x57,
        }
    }

    /// The register a temperature read-word starts at.
    pub fn temperature_register(self) -> u8 {
        match self {
            Self::Jc42 => JC42_REG_AMBIENT,
            Self::Spd5118 => SPD5118_REG_TEMP,
        }
    }

    /// Degrees Celsius from the word SMBus read-word returned for
    /// [`Self::temperature_register`].
    pub fn celsius(self, smbus_word: u16) -> f64 {
        match self {
            Self::Jc42 => jc42_celsius(smbus_word),
            Self::Spd5118 => spd5118_celsius(smbus_word),
        }
    }

    /// The range the part can represent, for `MinValue`/`MaxValue` defaults.
    pub fn representable(self) -> (f64, f64) {
        match self {
            // 13-bit two's complement at 1/16 °C.
            Self::Jc42 => (-256.0, 255.9375),
            // 11-bit two's complement at 1/4 °C.
            Self::Spd5118 => (-256.0, 255.75),
        }
    }
}

/// JC-42.4 ambient temperature register.
pub const JC42_REG_AMBIENT: u8 = 0x05;
/// SPD5118 MR49 (temperature, low byte; MR50 is the high byte).
pub const SPD5118_REG_TEMP: u8 = 0x31;

/// JC-42.4: the SMBus word is byte-swapped; bits 12:0 signed, 1/16 °C.
pub fn jc42_celsius(smbus_word: u16) -> f64 {
    let wire = smbus_word.swap_bytes();
    // Move bit 12 to the sign bit, then shift back arithmetically.
    let raw = (((wire & 0x1FFF) << 3) as i16) >> 3;
    f64::from(raw) * 0.0625
}

/// SPD5118: the SMBus word is in order; bits 12:2 signed, 1/4 °C.
pub fn spd5118_celsius(smbus_word: u16) -> f64 {
    let raw = (((smbus_word & 0x1FFC) << 3) as i16) >> 5;
    f64::from(raw) * 0.25
}

#[cfg(test)]
mod tests {
    use super::*;

    // Wire bytes (MSB first) as a TSOD sends them, turned into what read-word returns.
    fn tsod_word(msb: u8, lsb: u8) -> u16 {
        u16::from(msb) | (u16::from(lsb) << 8)
    }

    #[test]
    fn jc42_datasheet_points() {
        // (MSB, LSB, °C): JC-42.4 examples — +25 °C = 0x0190, +125 °C = 0x07D0,
        // +0.0625 = 0x0001, -0.0625 = 0x1FFF, -40 °C = 0x1D80, -256 = 0x1000.
        let table: [(u8, u8, f64); 7] = [
            (0x01, 0x90, 25.0),
            (0x07, 0xD0, 125.0),
            (0x00, 0x01, 0.0625),
            (0x1F, 0xFF, -0.0625),
            (0x1D, 0x80, -40.0),
            (0x10, 0x00, -256.0),
            (0x00, 0x00, 0.0),
        ];
        for (msb, lsb, c) in table {
            assert_eq!(jc42_celsius(tsod_word(msb, lsb)), c, "{msb:#04x}{lsb:02x}");
        }
    }

    #[test]
    fn jc42_flag_bits_do_not_change_the_value() {
        for flags in 0u8..8 {
            let msb = 0x01 | (flags << 5);
            assert_eq!(jc42_celsius(tsod_word(msb, 0x90)), 25.0);
        }
        // Without the swap, 25 °C would read as a nonsense value: the order matters.
        assert_ne!(jc42_celsius(0x0190), 25.0);
    }

    #[test]
    fn spd5118_points() {
        // Register value (MR50:MR49) = celsius * 4 << 2, 11-bit two's complement in 12:2.
        let table: [(u16, f64); 6] = [
            ((25 * 4) << 2, 25.0),
            (0x0004, 0.25),
            (0x1FFC, -0.25),
            (0x1000, -256.0),
            (0x0FFC, 255.75),
            (((85 * 4) << 2) | 0x0003, 85.0), // reserved bits 1:0 ignored
        ];
        for (w, c) in table {
            assert_eq!(spd5118_celsius(w), c, "{w:#06x}");
        }
        // Bits 15:13 are reserved: ignored.
        assert_eq!(spd5118_celsius(0xE000 | (30 * 16)), 30.0);
    }

    #[test]
    fn every_jc42_code_round_trips_through_the_formula() {
        for code in 0u16..0x2000 {
            let signed = if code & 0x1000 != 0 {
                i32::from(code) - 0x2000
            } else {
                i32::from(code)
            };
            let word = code.swap_bytes();
            assert_eq!(jc42_celsius(word), f64::from(signed) / 16.0);
        }
    }

    #[test]
    fn kinds_know_registers_and_addresses() {
        assert_eq!(DeviceKind::Jc42.temperature_register(), 0x05);
        assert_eq!(DeviceKind::Spd5118.temperature_register(), 0x31);
        assert!(DeviceKind::Jc42.addresses().contains(&0x1F));
        assert!(!DeviceKind::Jc42.addresses().contains(&0x50));
        assert!(DeviceKind::Spd5118.addresses().contains(&0x57));
        for k in [DeviceKind::Jc42, DeviceKind::Spd5118] {
            assert_eq!(DeviceKind::from_config_name(k.config_name()), Some(k));
        }
        assert_eq!(DeviceKind::from_config_name("lm75"), None);
    }
}
