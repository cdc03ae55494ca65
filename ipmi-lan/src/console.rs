//! A remote console session over UDP, blocking, for tools that talk to a real BMC (the
//! power-cycle tool, `acpigate-cycle`): [`crate::client`] with a socket, deadlines,
//! retransmission and a new login when the BMC has forgotten the session.
//!
//! What it promises a tool that runs against a rack every night:
//! * every wait has a deadline ([`Target::timeout`] per try, [`Target::tries`] tries);
//! * a refused login is never retried: a wrong password, or a name the BMC refuses (unknown,
//!   or locked out after failed logins — BMCs answer both alike, and trying again only makes a
//!   lockout longer), ends the session with an error saying which;
//! * a request the BMC no longer answers (it restarted, or dropped the session) gets one new
//!   login and one more try before the BMC is reported silent;
//! * a command that must not run twice (chassis control) is sent once, never retransmitted
//!   ([`Session::request_once`]): without an answer nobody knows whether it ran.
//!
//! Sessions use [`Client::randomized`]: random console session ID, Rm and IVs.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::client::{Client, ClientError};
use crate::crypto::CipherSuite;
use crate::wire::{self, IpmiResponse};
use openbmc_vocab::ipmi::{cmd, netfn};

/// The User privilege level, the one a session opens at.
const PRIVILEGE_USER: u8 = 2;

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: Vec<u8>,
    pub password: Vec<u8>,
    pub suite: CipherSuite,
    /// The RAKP 1 role byte (privilege in bits 3:0; 0x14 = Administrator, name-only lookup).
    pub role: u8,
    /// How long one try waits for its answer.
    pub timeout: Duration,
    /// Tries per message (the first send included), at least 1.
    pub tries: u32,
}

/// Why a session could not be opened or a request not answered.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("no answer from {addr} ({tries} tries, {} ms each)", timeout.as_millis())]
    NoAnswer {
        addr: SocketAddr,
        tries: u32,
        timeout: Duration,
    },
    #[error("login refused: the password does not match (RAKP 2 does not verify); not retried")]
    WrongPassword,
    #[error(
        "login refused for user `{user}` (RMCP+ status {status:#04x}): unknown user, or locked out \
         after failed logins; not retried, so as not to prolong a lockout"
    )]
    UserRefused { user: String, status: u8 },
    #[error("the BMC refused cipher suite {suite} (RMCP+ status {status:#04x})")]
    CipherRefused { suite: u8, status: u8 },
    #[error("the BMC refused the session (RMCP+ status {0:#04x})")]
    Refused(u8),
    #[error(
        "the BMC refused privilege level {level} for this session (completion code {cc:#04x}): \
         the user's channel privilege is lower"
    )]
    PrivilegeRefused { level: u8, cc: u8 },
    #[error("bad answer from the BMC: {0}")]
    Protocol(#[from] ClientError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

impl ConsoleError {
    /// A refusal that trying again cannot fix, and that trying again may make worse.
    pub fn is_login_refusal(&self) -> bool {
        matches!(
            self,
            Self::WrongPassword
                | Self::UserRefused { .. }
                | Self::CipherRefused { .. }
                | Self::PrivilegeRefused { .. }
        )
    }
}

/// One RMCP+ session.
pub struct Session {
    sock: UdpSocket,
    target: Target,
    client: Client,
    /// New logins made after the first (a BMC that restarted or dropped us).
    pub relogins: u32,
}

impl Session {
    /// Bind a socket, log in.
    pub fn open(target: Target) -> Result<Self, ConsoleError> {
        let any: SocketAddr = if target.addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = UdpSocket::bind(any)?;
        sock.connect(target.addr)?;
        let client = Self::fresh_client(&target)?;
        let mut s = Self {
            sock,
            target,
            client,
            relogins: 0,
        };
        s.login()?;
        Ok(s)
    }

    fn fresh_client(t: &Target) -> Result<Client, ConsoleError> {
        Ok(Client::new(t.suite, &t.user, &t.password, t.role).randomized()?)
    }

    /// Open Session, RAKP 1–4.
    fn login(&mut self) -> Result<(), ConsoleError> {
        self.client = Self::fresh_client(&self.target)?;
        let open = self.client.open_session();
        let reply = self.exchange(&[open], |d| {
            is_setup(d, wire::PAYLOAD_OPEN_SESSION_RESPONSE)
        })?;
        match self.client.on_open_session_response(&reply) {
            Err(ClientError::Status(st)) if is_cipher_status(st) => {
                return Err(ConsoleError::CipherRefused {
                    suite: self.target.suite.id(),
                    status: st,
                });
            }
            Err(ClientError::Status(st)) => return Err(ConsoleError::Refused(st)),
            other => {
                other?;
            }
        }
        let rm = self.client.rm;
        let rakp1 = self.client.rakp1(rm);
        let reply = self.exchange(&[rakp1], |d| is_setup(d, wire::PAYLOAD_RAKP2))?;
        match self.client.on_rakp2(&reply) {
            Ok(()) => {}
            Err(ClientError::Rakp2Mismatch) => {
                // Tell the BMC, as a console must, then stop.
                let _ = self
                    .sock
                    .send(&self.client.rakp3(wire::status::INVALID_INTEGRITY_CHECK));
                return Err(ConsoleError::WrongPassword);
            }
            Err(ClientError::Status(status)) => {
                return Err(ConsoleError::UserRefused {
                    user: String::from_utf8_lossy(&self.target.user).into_owned(),
                    status,
                });
            }
            Err(e) => return Err(e.into()),
        }
        let rakp3 = self.client.rakp3(wire::status::NO_ERRORS);
        let reply = self.exchange(&[rakp3], |d| is_setup(d, wire::PAYLOAD_RAKP4))?;
        match self.client.on_rakp4(&reply) {
            Err(ClientError::Status(st)) => return Err(ConsoleError::Refused(st)),
            other => other?,
        }
        // A session opens at User level (IPMI 2.0 §13.17); raise it to the role asked for,
        // as ipmitool does, or commands such as Chassis Control are refused (0xD4).
        let level = self.target.role & 0x0F;
        if level > PRIVILEGE_USER {
            let r = self.send_request(
                netfn::APP,
                cmd::app::SET_SESSION_PRIVILEGE_LEVEL,
                &[level],
                self.target.tries,
            )?;
            if r.cc != 0 {
                return Err(ConsoleError::PrivilegeRefused { level, cc: r.cc });
            }
        }
        Ok(())
    }

    /// Send `datagrams[i]` on try i (the last one again for later tries) until an answer
    /// `want` accepts comes; other datagrams (late answers to earlier tries) are skipped.
    fn exchange(
        &self,
        datagrams: &[Vec<u8>],
        want: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, ConsoleError> {
        let tries = self.target.tries.max(1);
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        for i in 0..tries {
            let d = datagrams
                .get(i as usize)
                .or(datagrams.last())
                .filter(|d| !d.is_empty())
                .ok_or(ClientError::Unexpected("nothing to send"))?;
            self.sock.send(d)?;
            let deadline = Instant::now() + self.target.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left))?;
                match self.sock.recv(&mut buf) {
                    Ok(n) if want(&buf[..n]) => return Ok(buf[..n].to_vec()),
                    Ok(_) => continue,
                    // Timed out, or ICMP port unreachable reported on the connected socket:
                    // both mean no answer to this try.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::ConnectionRefused
                        ) =>
                    {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            std::thread::sleep(left);
                        }
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(ConsoleError::NoAnswer {
            addr: self.target.addr,
            tries,
            timeout: self.target.timeout,
        })
    }

    /// A request that may be repeated (a read): retransmitted on silence; when the BMC stays
    /// silent, one new login and one more round of tries.
    pub fn request(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<IpmiResponse, ConsoleError> {
        match self.send_request(netfn, cmd, data, self.target.tries) {
            Err(ConsoleError::NoAnswer { .. }) => {
                self.login()?;
                self.relogins += 1;
                self.send_request(netfn, cmd, data, self.target.tries)
            }
            other => other,
        }
    }

    /// A request that must not run twice (chassis control): sent once, not retransmitted,
    /// not re-sent after a new login. Without an answer it is [`ConsoleError::NoAnswer`] and
    /// the caller decides: the command may or may not have run.
    pub fn request_once(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<IpmiResponse, ConsoleError> {
        self.send_request(netfn, cmd, data, 1)
    }

    /// Log in again now (after the BMC was silent to [`Session::request_once`]).
    pub fn relogin(&mut self) -> Result<(), ConsoleError> {
        self.login()?;
        self.relogins += 1;
        Ok(())
    }

    fn send_request(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        tries: u32,
    ) -> Result<IpmiResponse, ConsoleError> {
        // Each try is a new datagram with the next session sequence number (a replayed one
        // would be dropped by the BMC's replay window); any try's answer will do.
        let datagrams: Vec<Vec<u8>> = (0..tries.max(1))
            .map(|_| self.client.request(netfn, cmd, data))
            .collect();
        let client = &self.client;
        let reply = self.exchange(&datagrams, |d| {
            client
                .on_response(d)
                .is_ok_and(|r| r.netfn == netfn | 1 && r.cmd == cmd)
        })?;
        Ok(self.client.on_response(&reply)?)
    }
}

/// A session-less setup answer of type `payload_type`.
fn is_setup(d: &[u8], payload_type: u8) -> bool {
    matches!(wire::parse(d), Ok(wire::Packet::Rmcpp(p)) if p.payload_type == payload_type && p.session_id == 0)
}

/// RMCP+ status codes that refuse an algorithm.
fn is_cipher_status(st: u8) -> bool {
    use wire::status::*;
    matches!(
        st,
        INVALID_AUTH_ALGORITHM | INVALID_INTEGRITY_ALGORITHM | INVALID_CONFIDENTIALITY_ALGORITHM
    )
}
