//! One blocking thread per physical bus: requests in over a channel, each answer out over a
//! oneshot. The async side awaits the oneshot and never blocks.
//!
//! The [`Latch`] is the last line of the gate: a request carries the latch generation it was
//! issued under, and the bus thread refuses it if the gate has closed since — a request that
//! was queued while open but reached the wire only after the close (a starved thread on a busy
//! BMC) never starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
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
    generation: u64,
    reply: oneshot::Sender<Result<u16, SmbusError>>,
}

/// The gate as the bus threads see it: a generation bumped at every close.
#[derive(Debug, Clone, Default)]
pub struct Latch(Arc<AtomicU64>);

impl Latch {
    /// The current generation, to issue a request under.
    pub fn generation(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// The gate closed: every request issued before now is refused if not yet started.
    pub fn close(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Why a request was not started.
pub const REFUSED_AFTER_CLOSE: &str = "gate closed before the transfer could start";

/// The async handle of a bus thread. Cloning shares the thread.
#[derive(Clone)]
pub struct BusHandle {
    name: String,
    tx: mpsc::Sender<Request>,
    latch: Latch,
}

impl BusHandle {
    /// Start the thread that owns `bus`; requests are refused once `latch` has closed since
    /// they were issued.
    pub fn spawn(name: &str, mut bus: Box<dyn Smbus>, latch: Latch) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread_latch = latch.clone();
        thread::Builder::new()
            .name(format!("smbus-{name}"))
            .spawn(move || {
                // Ends when every handle is dropped.
                while let Ok(req) = rx.recv() {
                    if req.generation != thread_latch.generation() {
                        let _ = req
                            .reply
                            .send(Err(SmbusError::Busy(REFUSED_AFTER_CLOSE.to_owned())));
                        continue;
                    }
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
            latch,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Carry out one transfer on the bus thread.
    pub async fn transfer(&self, op: Op) -> Result<u16, SmbusError> {
        self.transfer_under(op, self.latch.generation()).await
    }

    /// Carry out one transfer issued under latch generation `generation` (taken when the core
    /// decided to read, while the gate was open).
    pub async fn transfer_under(&self, op: Op, generation: u64) -> Result<u16, SmbusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                generation,
                reply,
            })
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
        let h = BusHandle::spawn("t", Box::new(Fake(0)), Latch::default()).expect("spawn");
        assert_eq!(h.transfer(Op::ReadWord { addr: 0x18, reg: 5 }).await, Ok(6));
        assert_eq!(h.transfer(Op::ReadWord { addr: 0x18, reg: 5 }).await, Ok(7));
        assert_eq!(h.transfer(Op::ReadByte { addr: 0x18, reg: 0 }).await, Ok(7));
        assert_eq!(
            h.transfer(Op::ReadByte { addr: 0x50, reg: 0 }).await,
            Err(SmbusError::Nack)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_issued_before_a_close_never_starts() {
        let latch = Latch::default();
        let h = BusHandle::spawn("t", Box::new(Fake(0)), latch.clone()).expect("spawn");
        let issued = latch.generation();
        latch.close();
        assert_eq!(
            h.transfer_under(Op::ReadWord { addr: 0x18, reg: 5 }, issued)
                .await,
            Err(SmbusError::Busy(REFUSED_AFTER_CLOSE.to_owned()))
        );
        // Nothing reached the device: the next read is the fake's first.
        assert_eq!(h.transfer(Op::ReadWord { addr: 0x18, reg: 5 }).await, Ok(6));
    }
}
