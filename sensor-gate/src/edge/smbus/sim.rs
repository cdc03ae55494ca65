//! The simulated backend: a client of the simulator's SMBus (acpigate-sim's `smbus`
//! module), which models the shared DIMM bus with two masters, the BMC and the host
//! firmware. Each connection is one BMC master on that bus.
//!
//! Protocol: one request line, one reply line, ASCII, hex without `0x`:
//!
//! ```text
//! -> RB <addr> <reg>        read byte data        <- OK <byte>
//! -> RW <addr> <reg>        read word data        <- OK <word>
//!                                                 <- ERR NACK | ERR TIMEOUT
//!                                                 <- ERR BUSY <text> | ERR IO <text>
//! ```
//!
//! The simulator takes the transfer's bus time before it answers, so a read blocks for as
//! long as it would on the wire.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::{Smbus, SmbusError};

/// A reply that never comes is a stuck simulator; give up well after any modelled timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

pub struct SimBus {
    socket: PathBuf,
    conn: Option<BufReader<UnixStream>>,
}

impl SimBus {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket, conn: None }
    }

    fn request(&mut self, line: &str) -> Result<u16, SmbusError> {
        if self.conn.is_none() {
            let s = UnixStream::connect(&self.socket).map_err(|e| {
                SmbusError::Io(format!(
                    "cannot connect to simulated SMBus {}: {e}",
                    self.socket.display()
                ))
            })?;
            s.set_read_timeout(Some(REPLY_TIMEOUT))
                .map_err(|e| SmbusError::Io(e.to_string()))?;
            self.conn = Some(BufReader::new(s));
        }
        let result = self.exchange(line);
        if matches!(result, Err(SmbusError::Io(_))) {
            // Reconnect next time rather than reuse a stream in an unknown state.
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, line: &str) -> Result<u16, SmbusError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SmbusError::Io("not connected".to_owned()))?;
        conn.get_mut()
            .write_all(line.as_bytes())
            .map_err(|e| SmbusError::Io(format!("simulated SMBus: {e}")))?;
        let mut reply = String::new();
        match conn.read_line(&mut reply) {
            Ok(0) => return Err(SmbusError::Io("simulated SMBus closed".to_owned())),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(SmbusError::Io("simulated SMBus did not answer".to_owned()));
            }
            Err(e) => return Err(SmbusError::Io(format!("simulated SMBus: {e}"))),
        }
        parse_reply(reply.trim_end())
    }
}

/// Parse one reply line.
pub fn parse_reply(reply: &str) -> Result<u16, SmbusError> {
    if let Some(hex) = reply.strip_prefix("OK ") {
        return u16::from_str_radix(hex, 16)
            .map_err(|_| SmbusError::Io(format!("bad simulator reply `{reply}`")));
    }
    match reply.strip_prefix("ERR ") {
        Some("NACK") => Err(SmbusError::Nack),
        Some("TIMEOUT") => Err(SmbusError::Timeout),
        Some(rest) if rest.starts_with("BUSY") => Err(SmbusError::Busy(
            rest.trim_start_matches("BUSY").trim().to_owned(),
        )),
        Some(rest) if rest.starts_with("IO") => Err(SmbusError::Io(
            rest.trim_start_matches("IO").trim().to_owned(),
        )),
        _ => Err(SmbusError::Io(format!("bad simulator reply `{reply}`"))),
    }
}

impl Smbus for SimBus {
    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, SmbusError> {
        let v = self.request(&format!("RB {addr:02x} {reg:02x}\n"))?;
        u8::try_from(v).map_err(|_| SmbusError::Io(format!("byte read returned {v:#x}")))
    }

    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, SmbusError> {
        self.request(&format!("RW {addr:02x} {reg:02x}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply("OK 9001"), Ok(0x9001));
        assert_eq!(parse_reply("ERR NACK"), Err(SmbusError::Nack));
        assert_eq!(parse_reply("ERR TIMEOUT"), Err(SmbusError::Timeout));
        assert_eq!(
            parse_reply("ERR BUSY arbitration lost"),
            Err(SmbusError::Busy("arbitration lost".to_owned()))
        );
        assert!(matches!(parse_reply("ERR IO x"), Err(SmbusError::Io(m)) if m == "x"));
        assert!(matches!(parse_reply("OK zz"), Err(SmbusError::Io(_))));
        assert!(matches!(parse_reply("HELLO"), Err(SmbusError::Io(_))));
    }

    #[test]
    fn an_absent_simulator_is_an_io_error_naming_the_socket() {
        let mut b = SimBus::new(PathBuf::from("/nonexistent/smbus.sock"));
        let e = b.read_word_data(0x18, 5).expect_err("no simulator");
        assert!(e.to_string().contains("/nonexistent/smbus.sock"), "{e}");
    }

    #[test]
    fn a_round_trip_through_a_socket() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("sg-sim-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("bus.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).expect("read");
            assert_eq!(line, "RW 18 05\n");
            r.get_mut().write_all(b"OK 9001\n").expect("write");
            line.clear();
            r.read_line(&mut line).expect("read");
            assert_eq!(line, "RB 50 80\n");
            r.get_mut().write_all(b"ERR NACK\n").expect("write");
        });
        let mut b = SimBus::new(path);
        assert_eq!(b.read_word_data(0x18, 5), Ok(0x9001));
        assert_eq!(b.read_byte_data(0x50, 0x80), Err(SmbusError::Nack));
        server.join().expect("server");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
