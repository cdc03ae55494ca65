//! Register models of the parts on a DIMM SMBus, written from the JEDEC facts (not from our
//! daemon's decoder, so the two check each other).

/// A slave on the simulated bus. SMBus read-word returns the byte at `reg` as the low byte
/// and the next one as the high byte; parts with 16-bit registers override `read_word`.
pub trait Device: Send {
    fn read_byte(&mut self, reg: u8) -> u8;
    fn read_word(&mut self, reg: u8) -> u16 {
        u16::from(self.read_byte(reg)) | (u16::from(self.read_byte(reg.wrapping_add(1))) << 8)
    }
    /// Set the temperature this part reports (no-op for parts without a sensor).
    fn set_celsius(&mut self, _c: f64) {}
    fn kind(&self) -> &'static str;
}

/// JC-42.4 TSOD (DDR4), 16-bit registers sent most significant byte first.
pub struct Tsod {
    pub celsius: f64,
}

impl Tsod {
    /// The ambient temperature register: 13-bit two's complement, 1/16 °C, flags clear.
    pub fn ambient_register(&self) -> u16 {
        let code = (self.celsius * 16.0).round() as i32;
        (code as u16) & 0x1FFF
    }
    fn register(&self, reg: u8) -> u16 {
        match reg {
            0x00 => 0x0077, // capabilities: has alarm and critical trips, 0.0625 °C resolution
            0x05 => self.ambient_register(),
            0x06 => 0x1131, // manufacturer id (a made-up, plausible value)
            0x07 => 0x2200, // device id / revision
            _ => 0x0000,
        }
    }
}

impl Device for Tsod {
    fn read_byte(&mut self, reg: u8) -> u8 {
        // Byte reads return the most significant byte of the register.
        (self.register(reg) >> 8) as u8
    }
    fn read_word(&mut self, reg: u8) -> u16 {
        // MSB first on the wire = low byte of the SMBus word.
        self.register(reg).swap_bytes()
    }
    fn set_celsius(&mut self, c: f64) {
        self.celsius = c;
    }
    fn kind(&self) -> &'static str {
        "jc42"
    }
}

/// DDR4 SPD EEPROM (EE1004-style), page 0: byte reads of the SPD contents.
pub struct SpdEeprom {
    pub data: Vec<u8>,
}

impl SpdEeprom {
    /// Plausible DDR4 SPD contents for DIMM `n` (bytes 0–2: size, revision, DRAM type 0x0C).
    pub fn ddr4(n: u8) -> Self {
        let mut data: Vec<u8> = (0..=255u8).map(|i| i.wrapping_mul(7) ^ n).collect();
        data[0] = 0x23;
        data[1] = 0x11;
        data[2] = 0x0C;
        Self { data }
    }
}

impl Device for SpdEeprom {
    fn read_byte(&mut self, reg: u8) -> u8 {
        self.data.get(usize::from(reg)).copied().unwrap_or(0xFF)
    }
    fn kind(&self) -> &'static str {
        "spd-eeprom"
    }
}

/// SPD5118 hub (DDR5): MR0:MR1 = 0x51 0x18, MR5 bit 1 = has a temperature sensor, MR49:MR50
/// the temperature (LSB first, bits 12:2, 1/4 °C); register addresses with bit 7 set read the
/// SPD NVM (legacy I2C addressing, page 0).
pub struct Spd5118 {
    pub celsius: f64,
    pub nvm: Vec<u8>,
}

impl Spd5118 {
    pub fn new(n: u8, celsius: f64) -> Self {
        let mut nvm: Vec<u8> = (0..=127u8).map(|i| i.wrapping_mul(5) ^ n).collect();
        nvm[2] = 0x12; // DDR5 SDRAM
        Self { celsius, nvm }
    }
    fn temperature(&self) -> u16 {
        let code = (self.celsius * 4.0).round() as i32;
        ((code as u16) & 0x07FF) << 2
    }
}

impl Device for Spd5118 {
    fn read_byte(&mut self, reg: u8) -> u8 {
        if reg & 0x80 != 0 {
            return self.nvm[usize::from(reg & 0x7F)];
        }
        match reg {
            0x00 => 0x51,
            0x01 => 0x18,
            0x02 => 0x10,
            0x03 => 0x80, // vendor bank (odd parity)
            0x04 => 0x2C,
            0x05 => 0x02,
            0x31 => (self.temperature() & 0xFF) as u8,
            0x32 => (self.temperature() >> 8) as u8,
            _ => 0x00,
        }
    }
    fn set_celsius(&mut self, c: f64) {
        self.celsius = c;
    }
    fn kind(&self) -> &'static str {
        "spd5118"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsod_word_is_byte_swapped_and_scaled() {
        let mut t = Tsod { celsius: 25.0 };
        // 25 °C = 0x0190, MSB 0x01 first on the wire → word 0x9001.
        assert_eq!(t.read_word(0x05), 0x9001);
        t.celsius = -0.0625;
        assert_eq!(t.read_word(0x05), 0xFF1F);
    }

    #[test]
    fn spd5118_temperature_and_nvm() {
        let mut d = Spd5118::new(0, 30.0);
        assert_eq!(d.read_word(0x31), 30 * 16);
        assert_eq!(d.read_word(0x00), 0x1851, "MR0:MR1 read swapped is 0x5118");
        assert_eq!(d.read_byte(0x82), 0x12);
    }
}
