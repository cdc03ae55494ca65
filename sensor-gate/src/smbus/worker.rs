//! One blocking thread per physical bus: requests in over a channel, each answer out over a
//! oneshot. The async side awaits the oneshot and never blocks.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{Smbus, SmbusError};

/// A transfer the worker carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ReadByte { addr: u8, reg: u8 },
    ReadWord { addr: u8, reg: u8 },
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<u16, SmbusError>>,
}

/// The async handle of a bus thread. Cloning shares the thread.
#[derive(Clone)]
pub struct BusHandle {
    name: String,
    tx: mpsc::Sender<Request>,
}

impl BusHandle {
    /// Start the thread that owns `bus`.
    pub fn spawn(name: &str, mut bus: Box<dyn Smbus>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name(format!("smbus-{name}"))
            .spawn(move || {
                // Ends when every handle is dropped.
                while let Ok(req) = rx.recv() {
                    let result = match req.op {
                        Op::ReadByte { addr, reg } => bus.read_byte_data(addr, reg).map(u16::from),
                        Op::ReadWord { addr, reg } => bus.read_word_data(addr, reg),
                    };
                    // The requester may have gone away (daemon stopping): nothing to do.
                    let _ = req.reply.send(result);
                }
            })?;
        Ok(Self {
            name: name.to_owned(),
            tx,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Carry out one transfer on the bus thread.
    pub async fn transfer(&self, op: Op) -> Result<u16, SmbusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { op, reply })
            .map_err(|_| SmbusError::Io(format!("bus thread {} has stopped", self.name)))?;
        rx.await
            .map_err(|_| SmbusError::Io(format!("bus thread {} dropped the request", self.name)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(u16);
    impl Smbus for Fake {
        fn read_byte_data(&mut self, addr: u8, _reg: u8) -> Result<u8, SmbusError> {
            if addr == 0x50 {
                Err(SmbusError::Nack)
            } else {
                Ok(7)
            }
        }
        fn read_word_data(&mut self, _addr: u8, reg: u8) -> Result<u16, SmbusError> {
            self.0 += 1;
            Ok(self.0 + u16::from(reg))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transfers_run_on_the_thread_in_order() {
        let h = BusHandle::spawn("t", Box::new(Fake(0))).expect("spawn");
        assert_eq!(h.transfer(Op::ReadWord { addr: 0x18, reg: 5 }).await, Ok(6));
        assert_eq!(h.transfer(Op::ReadWord { addr: 0x18, reg: 5 }).await, Ok(7));
        assert_eq!(h.transfer(Op::ReadByte { addr: 0x18, reg: 0 }).await, Ok(7));
        assert_eq!(
            h.transfer(Op::ReadByte { addr: 0x50, reg: 0 }).await,
            Err(SmbusError::Nack)
        );
    }
}
