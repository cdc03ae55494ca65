//! SMBus access behind one narrow trait, with two backends chosen by configuration:
//! [`i2cdev`] (`/dev/i2c-N`) and [`sim`] (the simulated bus of the test rig, over a unix
//! socket). Every backend is blocking; [`worker`] runs each physical bus on a dedicated
//! thread so no transfer ever blocks the async runtime (and so one bus's transfers are
//! serialised, as they are on the wire).

pub mod i2cdev;
pub mod sim;
pub mod worker;

/// Why a transfer failed: the core's own type, since a failed read is an event it decides
/// on; the backends produce it.
pub use crate::core::SmbusError;

/// The two SMBus operations the sensors need.
pub trait Smbus: Send + 'static {
    /// SMBus "read byte data": one register byte.
    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, SmbusError>;
    /// SMBus "read word data": two bytes, the first received as the low byte.
    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, SmbusError>;
}

/// Which backend a bus uses; parsed from the configuration's `"backend"` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `"i2c-dev"` with `"bus": N`: `/dev/i2c-N`.
    I2cDev { bus: u32 },
    /// `"sim:/path/to/socket"`: the simulator's SMBus; with `"bus": N` it stands for
    /// `/dev/i2c-N` where entity-manager records name bus N (a simulated board).
    Sim {
        socket: std::path::PathBuf,
        stands_for: Option<u32>,
    },
}

/// `/dev/i2c-N`.
pub fn i2c_dev_node(bus: u32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/i2c-{bus}"))
}

impl Backend {
    /// Open the backend. Opening never touches the bus; problems show on the first transfer
    /// (so a missing `/dev/i2c-N` is a sensor state, not a daemon failure).
    pub fn open(&self) -> Box<dyn Smbus> {
        match self {
            Self::I2cDev { bus } => Box::new(i2cdev::I2cDevBus::new(i2c_dev_node(*bus))),
            Self::Sim { socket, .. } => Box::new(sim::SimBus::new(socket.clone())),
        }
    }

    /// The kernel's bus number, for a real bus (what the scan for other masters looks at).
    pub fn i2c_number(&self) -> Option<u32> {
        match self {
            Self::I2cDev { bus } => Some(*bus),
            Self::Sim { .. } => None,
        }
    }

    /// The bus number an entity-manager record names to mean this bus.
    pub fn record_bus(&self) -> Option<u32> {
        match self {
            Self::I2cDev { bus } => Some(*bus),
            Self::Sim { stands_for, .. } => *stands_for,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::I2cDev { bus } => format!("i2c-dev {}", i2c_dev_node(*bus).display()),
            Self::Sim {
                socket,
                stands_for: None,
            } => format!("simulated SMBus at {}", socket.display()),
            Self::Sim {
                socket,
                stands_for: Some(n),
            } => format!(
                "simulated SMBus at {} (standing for {})",
                socket.display(),
                i2c_dev_node(*n).display()
            ),
        }
    }
}
