//! The real backend: `/dev/i2c-N` through the `i2cdev` crate. Blocking; used only on the bus
//! thread ([`super::worker`]).

use std::collections::HashMap;
use std::path::PathBuf;

use i2cdev::core::I2CDevice;
use i2cdev::linux::{LinuxI2CDevice, LinuxI2CError};

use super::{Smbus, SmbusError};

/// One `/dev/i2c-N`, with a device handle per address opened on first use.
pub struct I2cDevBus {
    device: PathBuf,
    clients: HashMap<u8, LinuxI2CDevice>,
}

impl I2cDevBus {
    pub fn new(device: PathBuf) -> Self {
        Self {
            device,
            clients: HashMap::new(),
        }
    }

    fn client(&mut self, addr: u8) -> Result<&mut LinuxI2CDevice, SmbusError> {
        if !self.clients.contains_key(&addr) {
            // `new` issues I2C_SLAVE, which the kernel refuses with EBUSY while a driver is
            // bound to the address. We never force it: two masters of one client on the BMC
            // side is exactly the kind of collision this daemon exists to prevent.
            let dev = LinuxI2CDevice::new(&self.device, u16::from(addr))
                .map_err(|e| open_error(&self.device, addr, e))?;
            self.clients.insert(addr, dev);
        }
        self.clients
            .get_mut(&addr)
            .ok_or_else(|| SmbusError::Io("client vanished".to_owned()))
    }
}

impl Smbus for I2cDevBus {
    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, SmbusError> {
        let c = self.client(addr)?;
        c.smbus_read_byte_data(reg).map_err(transfer_error)
    }

    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, SmbusError> {
        let c = self.client(addr)?;
        c.smbus_read_word_data(reg).map_err(transfer_error)
    }
}

fn errno(e: &LinuxI2CError) -> Option<i32> {
    match e {
        LinuxI2CError::Errno(n) => Some(*n),
        LinuxI2CError::Io(io) => io.raw_os_error(),
    }
}

fn open_error(device: &std::path::Path, addr: u8, e: LinuxI2CError) -> SmbusError {
    match errno(&e) {
        Some(libc::EBUSY) => SmbusError::Busy(format!(
            "address {addr:#04x} on {} is owned by a kernel driver (e.g. jc42 or spd5118); \
             unbind it or use the hwmon path",
            device.display()
        )),
        Some(libc::ENOENT) => SmbusError::Io(format!(
            "{} does not exist (wrong bus number, or i2c-dev not loaded)",
            device.display()
        )),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            SmbusError::Io(format!("{}: permission denied", device.display()))
        }
        _ => SmbusError::Io(format!("{}: {e}", device.display())),
    }
}

/// The errno values Linux I2C adapters use (Documentation/i2c/fault-codes.rst).
fn transfer_error(e: LinuxI2CError) -> SmbusError {
    match errno(&e) {
        Some(libc::ENXIO) | Some(libc::EREMOTEIO) => SmbusError::Nack,
        Some(libc::ETIMEDOUT) => SmbusError::Timeout,
        Some(libc::EAGAIN) => SmbusError::Busy("arbitration lost".to_owned()),
        Some(libc::EBUSY) => SmbusError::Busy("bus busy".to_owned()),
        _ => SmbusError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_node_says_so() {
        let mut bus = I2cDevBus::new(PathBuf::from("/dev/i2c-250"));
        let err = bus.read_word_data(0x18, 5).expect_err("no such bus");
        let SmbusError::Io(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("/dev/i2c-250 does not exist"), "{msg}");
    }

    #[test]
    fn errno_mapping_follows_the_kernel_fault_codes() {
        assert_eq!(
            transfer_error(LinuxI2CError::Errno(libc::ENXIO)),
            SmbusError::Nack
        );
        assert_eq!(
            transfer_error(LinuxI2CError::Errno(libc::EREMOTEIO)),
            SmbusError::Nack
        );
        assert_eq!(
            transfer_error(LinuxI2CError::Errno(libc::ETIMEDOUT)),
            SmbusError::Timeout
        );
        assert!(matches!(
            transfer_error(LinuxI2CError::Errno(libc::EAGAIN)),
            SmbusError::Busy(_)
        ));
        let busy = open_error(
            std::path::Path::new("/dev/i2c-3"),
            0x18,
            LinuxI2CError::Errno(libc::EBUSY),
        );
        assert!(
            busy.to_string().contains("owned by a kernel driver"),
            "{busy}"
        );
    }
}
