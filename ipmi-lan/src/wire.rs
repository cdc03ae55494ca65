//! Byte layouts: RMCP, ASF presence ping/pong, the IPMI 1.5 and RMCP+ session wrappers, the
//! session-setup payloads (Open Session, RAKP 1–4) and IPMI LAN messages (IPMI 2.0
//! §13.1–13.23, ASF 2.0 §3.2.4). Both sides of each exchange are here, the BMC's and the
//! console's ([`crate::client`]). Decoding never panics and never allocates more than the
//! datagram it is given; everything here is fuzzed.

use thiserror::Error;

pub const RMCP_VERSION: u8 = 0x06;
/// RMCP sequence number meaning "no RMCP ACK wanted" (always used for IPMI).
pub const RMCP_SEQ_NO_ACK: u8 = 0xFF;
pub const RMCP_CLASS_ASF: u8 = 0x06;
pub const RMCP_CLASS_IPMI: u8 = 0x07;
/// The ASF IANA enterprise number (4542), big-endian on the wire.
pub const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xBE];
pub const ASF_TYPE_PING: u8 = 0x80;
pub const ASF_TYPE_PONG: u8 = 0x40;

/// Session auth type / format byte.
pub const AUTH_TYPE_NONE: u8 = 0x00;
pub const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;

/// RMCP+ payload types (§13.27.3).
pub const PAYLOAD_IPMI: u8 = 0x00;
pub const PAYLOAD_OPEN_SESSION_REQUEST: u8 = 0x10;
pub const PAYLOAD_OPEN_SESSION_RESPONSE: u8 = 0x11;
pub const PAYLOAD_RAKP1: u8 = 0x12;
pub const PAYLOAD_RAKP2: u8 = 0x13;
pub const PAYLOAD_RAKP3: u8 = 0x14;
pub const PAYLOAD_RAKP4: u8 = 0x15;
const PAYLOAD_FLAG_ENCRYPTED: u8 = 0x80;
const PAYLOAD_FLAG_AUTHENTICATED: u8 = 0x40;
/// "Next header" byte of the RMCP+ session trailer.
pub const NEXT_HEADER: u8 = 0x07;

/// The BMC's IPMB slave address (responder) and the remote console's software ID.
pub const BMC_SLAVE_ADDR: u8 = 0x20;

/// Largest datagram we look at; anything longer is not an IPMI LAN packet we could produce
/// a sensible answer to.
pub const MAX_DATAGRAM: usize = 1024;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    #[error("datagram too short")]
    Truncated,
    #[error("datagram too long")]
    TooLong,
    #[error("not RMCP version 1.0")]
    BadRmcpVersion,
    #[error("unsupported RMCP class {0:#04x}")]
    BadClass(u8),
    #[error("not an ASF presence ping")]
    NotAsfPing,
    #[error("IPMI 1.5 authentication type {0:#04x} refused")]
    Ipmi15Auth(u8),
    #[error("length field disagrees with the datagram")]
    BadLength,
    #[error("OEM payloads are not supported")]
    OemPayload,
}

/// One parsed datagram. Slices borrow from it.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// ASF presence ping; the pong echoes the message tag.
    AsfPing { tag: u8 },
    /// IPMI 1.5 session wrapper with auth type NONE (the only one we read: it is what
    /// ipmitool uses for the pre-session Get Channel Authentication Capabilities).
    Ipmi15 {
        seq: u32,
        session_id: u32,
        message: &'a [u8],
    },
    /// RMCP+ (IPMI 2.0) session wrapper.
    Rmcpp(RmcppPacket<'a>),
}

/// An RMCP+ packet before integrity checking and decryption.
#[derive(Debug, PartialEq, Eq)]
pub struct RmcppPacket<'a> {
    pub encrypted: bool,
    pub authenticated: bool,
    pub payload_type: u8,
    pub session_id: u32,
    pub seq: u32,
    pub payload: &'a [u8],
    /// Everything after the payload (integrity pad, pad length, next header, AuthCode).
    pub trailer: &'a [u8],
    /// The session part of the datagram: from the auth type byte to the end. The AuthCode
    /// covers this minus the AuthCode itself.
    pub session_bytes: &'a [u8],
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Parse a datagram's RMCP and session framing.
pub fn parse(d: &[u8]) -> Result<Packet<'_>, ParseError> {
    if d.len() > MAX_DATAGRAM {
        return Err(ParseError::TooLong);
    }
    if d.len() < 4 {
        return Err(ParseError::Truncated);
    }
    if d[0] != RMCP_VERSION {
        return Err(ParseError::BadRmcpVersion);
    }
    // Bit 7 of the class is the RMCP ACK flag; we never ask for ACKs, so ACKs are not ours.
    match d[3] {
        RMCP_CLASS_ASF => parse_asf(&d[4..]),
        RMCP_CLASS_IPMI => parse_ipmi_session(&d[4..]),
        c => Err(ParseError::BadClass(c)),
    }
}

fn parse_asf(a: &[u8]) -> Result<Packet<'_>, ParseError> {
    // IANA(4) type(1) tag(1) reserved(1) data length(1)
    if a.len() < 8 {
        return Err(ParseError::Truncated);
    }
    if a[0..4] != ASF_IANA || a[4] != ASF_TYPE_PING {
        return Err(ParseError::NotAsfPing);
    }
    Ok(Packet::AsfPing { tag: a[5] })
}

fn parse_ipmi_session(s: &[u8]) -> Result<Packet<'_>, ParseError> {
    let Some(&auth_type) = s.first() else {
        return Err(ParseError::Truncated);
    };
    if auth_type == AUTH_TYPE_RMCP_PLUS {
        return parse_rmcpp(s);
    }
    if auth_type != AUTH_TYPE_NONE {
        return Err(ParseError::Ipmi15Auth(auth_type));
    }
    // auth type(1) seq(4) session id(4) [no auth code for NONE] length(1) message
    if s.len() < 10 {
        return Err(ParseError::Truncated);
    }
    let seq = u32_le(&s[1..5]);
    let session_id = u32_le(&s[5..9]);
    let len = usize::from(s[9]);
    let rest = &s[10..];
    // Some clients append a legacy pad byte; never read past the stated length.
    if rest.len() < len {
        return Err(ParseError::BadLength);
    }
    Ok(Packet::Ipmi15 {
        seq,
        session_id,
        message: &rest[..len],
    })
}

fn parse_rmcpp(s: &[u8]) -> Result<Packet<'_>, ParseError> {
    // auth type(1) payload type(1) session id(4) seq(4) payload length(2)
    if s.len() < 12 {
        return Err(ParseError::Truncated);
    }
    let pt = s[1];
    let payload_type = pt & 0x3F;
    if payload_type == 0x02 {
        return Err(ParseError::OemPayload);
    }
    let session_id = u32_le(&s[2..6]);
    let seq = u32_le(&s[6..10]);
    let len = usize::from(u16::from_le_bytes([s[10], s[11]]));
    let rest = &s[12..];
    if rest.len() < len {
        return Err(ParseError::BadLength);
    }
    let (payload, trailer) = rest.split_at(len);
    Ok(Packet::Rmcpp(RmcppPacket {
        encrypted: pt & PAYLOAD_FLAG_ENCRYPTED != 0,
        authenticated: pt & PAYLOAD_FLAG_AUTHENTICATED != 0,
        payload_type,
        session_id,
        seq,
        payload,
        trailer,
        session_bytes: s,
    }))
}

impl RmcppPacket<'_> {
    /// Split the trailer for an AuthCode of `code_len` bytes: returns (covered bytes,
    /// AuthCode) if the pad, pad length and next header are well formed.
    pub fn integrity_parts(&self, code_len: usize) -> Option<(&[u8], &[u8])> {
        let t = self.trailer;
        if t.len() < code_len + 2 {
            return None;
        }
        let code_at = t.len() - code_len;
        if t[code_at - 1] != NEXT_HEADER {
            return None;
        }
        let pad_len = usize::from(t[code_at - 2]);
        // The pad brings the covered range to a multiple of 4, so it is at most 3 bytes.
        if pad_len > 3 || pad_len != code_at - 2 {
            return None;
        }
        if t[..pad_len].iter().any(|&b| b != 0xFF) {
            return None;
        }
        let covered_len = self.session_bytes.len() - code_len;
        Some((
            &self.session_bytes[..covered_len],
            &self.session_bytes[covered_len..],
        ))
    }
}

/// The RMCP header every IPMI datagram starts with.
pub fn rmcp_header(class: u8) -> [u8; 4] {
    [RMCP_VERSION, 0x00, RMCP_SEQ_NO_ACK, class]
}

/// ASF presence pong for `tag`: IPMI supported, no ASF interactions.
pub fn asf_pong(tag: u8) -> Vec<u8> {
    let mut v = rmcp_header(RMCP_CLASS_ASF).to_vec();
    v.extend_from_slice(&ASF_IANA);
    v.extend_from_slice(&[ASF_TYPE_PONG, tag, 0x00, 0x10]);
    // Pong data: IANA enterprise, OEM-defined (0), supported entities (bit 7 = IPMI,
    // version 1 = ASF 1.0), supported interactions (none), 6 reserved bytes.
    v.extend_from_slice(&ASF_IANA);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&[0; 6]);
    v
}

/// An ASF presence ping (for tests and the fuzz corpus).
pub fn asf_ping(tag: u8) -> Vec<u8> {
    let mut v = rmcp_header(RMCP_CLASS_ASF).to_vec();
    v.extend_from_slice(&ASF_IANA);
    v.extend_from_slice(&[ASF_TYPE_PING, tag, 0x00, 0x00]);
    v
}

/// An IPMI 1.5 session-less (auth type NONE) datagram carrying `message`.
pub fn ipmi15_packet(message: &[u8]) -> Vec<u8> {
    let mut v = rmcp_header(RMCP_CLASS_IPMI).to_vec();
    v.push(AUTH_TYPE_NONE);
    v.extend_from_slice(&[0; 8]);
    // Messages we build are short (a response to a pre-session command).
    v.push(u8::try_from(message.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(message);
    v
}

/// An RMCP+ datagram without integrity (pre-session and session-setup messages).
pub fn rmcpp_plain(payload_type: u8, session_id: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = rmcp_header(RMCP_CLASS_IPMI).to_vec();
    v.push(AUTH_TYPE_RMCP_PLUS);
    v.push(payload_type & 0x3F);
    v.extend_from_slice(&session_id.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&payload_len(payload).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn payload_len(p: &[u8]) -> u16 {
    // Payloads are bounded by MAX_DATAGRAM-sized inputs and IPMI message limits.
    u16::try_from(p.len()).unwrap_or(u16::MAX)
}

/// An authenticated (and, if `encrypted`, already-encrypted payload) RMCP+ datagram. The
/// AuthCode is computed by `auth` over the covered bytes.
pub fn rmcpp_authenticated(
    payload_type: u8,
    encrypted: bool,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    auth: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut v = rmcp_header(RMCP_CLASS_IPMI).to_vec();
    let start = v.len();
    v.push(AUTH_TYPE_RMCP_PLUS);
    let flags = PAYLOAD_FLAG_AUTHENTICATED | if encrypted { PAYLOAD_FLAG_ENCRYPTED } else { 0 };
    v.push(flags | (payload_type & 0x3F));
    v.extend_from_slice(&session_id.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&payload_len(payload).to_le_bytes());
    v.extend_from_slice(payload);
    // Pad so that the covered range (auth type .. next header) is a multiple of 4.
    let covered_without_pad = v.len() - start + 2;
    let pad = (4 - covered_without_pad % 4) % 4;
    v.extend(std::iter::repeat_n(0xFF, pad));
    v.push(pad as u8);
    v.push(NEXT_HEADER);
    let code = auth(&v[start..]);
    v.extend_from_slice(&code);
    v
}

// ---- session-setup payloads (IPMI 2.0 §13.17–13.23) ----

/// RMCP+ and RAKP message status codes (IPMI 2.0 table 13-15): byte 1 of the Open Session
/// Response and of RAKP 2, 3 and 4. A code space of its own, not IPMI completion codes.
pub mod status {
    pub const NO_ERRORS: u8 = 0x00;
    pub const INSUFFICIENT_RESOURCES: u8 = 0x01;
    pub const INVALID_SESSION_ID: u8 = 0x02;
    pub const INVALID_AUTH_ALGORITHM: u8 = 0x04;
    pub const INVALID_INTEGRITY_ALGORITHM: u8 = 0x05;
    pub const INVALID_ROLE: u8 = 0x09;
    pub const UNAUTHORIZED_ROLE: u8 = 0x0A;
    pub const INVALID_NAME_LENGTH: u8 = 0x0C;
    pub const UNAUTHORIZED_NAME: u8 = 0x0D;
    pub const INVALID_INTEGRITY_CHECK: u8 = 0x0F;
    pub const INVALID_CONFIDENTIALITY_ALGORITHM: u8 = 0x10;
    pub const NO_CIPHER_SUITE_MATCH: u8 = 0x11;
    pub const ILLEGAL_PARAMETER: u8 = 0x12;
}

/// Longest user name RAKP 1 can carry (IPMI 2.0 §13.20).
pub const MAX_USER_NAME: usize = 16;

/// Why a session-setup payload could not be read.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum WireError {
    /// Shorter than the message's fixed part.
    #[error("{what}: {got} bytes, at least {need} needed")]
    Truncated {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// An algorithm payload of Open Session does not have the type its position fixes, or
    /// not the length 8 the spec fixes.
    #[error(
        "algorithm payload {index}: type {payload_type:#04x}, length {length} (want type {index}, length 8)"
    )]
    BadAlgorithmPayload {
        index: u8,
        payload_type: u8,
        length: u8,
    },
    /// RAKP 1 names a user name longer than [`MAX_USER_NAME`].
    #[error("user name length {0} (at most 16)")]
    UserNameTooLong(u8),
    /// RAKP 1's user name runs past the end of the payload.
    #[error("user name runs past the end of RAKP 1")]
    UserNameTruncated,
}

fn need(what: &'static str, p: &[u8], need: usize) -> Result<(), WireError> {
    if p.len() < need {
        return Err(WireError::Truncated {
            what,
            need,
            got: p.len(),
        });
    }
    Ok(())
}

fn array16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    a
}

/// The first eight bytes of every session-setup payload: message tag, a byte whose meaning
/// depends on the message (privilege, status or reserved), two reserved bytes, and a session
/// ID. An error answer to a request that is too short for its own decoder echoes these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupHeader {
    pub tag: u8,
    /// The session ID at bytes 4–7: ours (SIDc) in RAKP 1 and 3, the console's (SIDm) in
    /// Open Session Request and in every answer.
    pub session_id: u32,
}

impl SetupHeader {
    pub const LEN: usize = 8;

    pub fn decode(p: &[u8]) -> Result<Self, WireError> {
        need("session-setup header", p, Self::LEN)?;
        Ok(SetupHeader {
            tag: p[0],
            session_id: u32_le(&p[4..8]),
        })
    }
}

/// The algorithm numbers of a cipher suite as Open Session carries them (6 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    pub auth: u8,
    pub integrity: u8,
    pub confidentiality: u8,
}

impl From<(u8, u8, u8)> for Algorithms {
    fn from((auth, integrity, confidentiality): (u8, u8, u8)) -> Self {
        Algorithms {
            auth,
            integrity,
            confidentiality,
        }
    }
}

/// One 8-byte algorithm payload of Open Session, as sent: type, 2 reserved, length,
/// algorithm, 3 reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmPayload {
    pub payload_type: u8,
    pub length: u8,
    /// The whole algorithm byte (bits 7:6 are reserved).
    pub algorithm: u8,
}

impl AlgorithmPayload {
    const LEN: u8 = 8;

    fn new(payload_type: u8, algorithm: u8) -> Self {
        AlgorithmPayload {
            payload_type,
            length: Self::LEN,
            algorithm,
        }
    }

    fn decode(b: &[u8]) -> Self {
        AlgorithmPayload {
            payload_type: b[0],
            length: b[3],
            algorithm: b[4],
        }
    }

    fn encode(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(&[
            self.payload_type,
            0,
            0,
            self.length,
            self.algorithm,
            0,
            0,
            0,
        ]);
    }
}

fn algorithm_payloads(a: Algorithms) -> [AlgorithmPayload; 3] {
    [
        AlgorithmPayload::new(0, a.auth),
        AlgorithmPayload::new(1, a.integrity),
        AlgorithmPayload::new(2, a.confidentiality),
    ]
}

/// The algorithms of three payloads that have the types (0, 1, 2) and length 8 the spec
/// fixes; reserved bits and bytes are ignored, as IPMI asks of a receiver.
fn checked_algorithms(payloads: &[AlgorithmPayload; 3]) -> Result<Algorithms, WireError> {
    let mut algs = [0u8; 3];
    for (index, (p, alg)) in (0u8..).zip(payloads.iter().zip(&mut algs)) {
        if p.payload_type != index || p.length != AlgorithmPayload::LEN {
            return Err(WireError::BadAlgorithmPayload {
                index,
                payload_type: p.payload_type,
                length: p.length,
            });
        }
        *alg = p.algorithm & 0x3F;
    }
    Ok(Algorithms::from((algs[0], algs[1], algs[2])))
}

/// RMCP+ Open Session Request (§13.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    pub tag: u8,
    /// Requested maximum privilege level, the low nibble (0 = the highest the channel
    /// allows; bits 7:4 are reserved).
    pub requested_privilege: u8,
    /// SIDm, the console's session ID.
    pub console_session_id: u32,
    /// Authentication, integrity and confidentiality payloads, as sent: see
    /// [`OpenSessionRequest::algorithms`].
    pub payloads: [AlgorithmPayload; 3],
}

impl OpenSessionRequest {
    pub const LEN: usize = 32;

    pub fn new(tag: u8, requested_privilege: u8, console_session_id: u32, a: Algorithms) -> Self {
        OpenSessionRequest {
            tag,
            requested_privilege,
            console_session_id,
            payloads: algorithm_payloads(a),
        }
    }

    /// The fixed 32 bytes; anything after them is ignored.
    pub fn decode(p: &[u8]) -> Result<Self, WireError> {
        need("Open Session Request", p, Self::LEN)?;
        Ok(OpenSessionRequest {
            tag: p[0],
            requested_privilege: p[1] & 0x0F,
            console_session_id: u32_le(&p[4..8]),
            payloads: [
                AlgorithmPayload::decode(&p[8..16]),
                AlgorithmPayload::decode(&p[16..24]),
                AlgorithmPayload::decode(&p[24..32]),
            ],
        })
    }

    /// The proposed algorithms, if the payloads are the ones the spec lays out.
    pub fn algorithms(&self) -> Result<Algorithms, WireError> {
        checked_algorithms(&self.payloads)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.requested_privilege, 0, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        for p in &self.payloads {
            p.encode(&mut v);
        }
        v
    }
}

/// What an accepted Open Session Response carries beyond the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedSession {
    /// The maximum privilege level granted.
    pub max_privilege: u8,
    /// SIDc, our session ID.
    pub bmc_session_id: u32,
    pub algorithms: Algorithms,
}

/// RMCP+ Open Session Response (§13.18). A refusal is the 8-byte header only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    pub tag: u8,
    pub status: u8,
    pub console_session_id: u32,
    /// `Some` exactly when `status` is [`status::NO_ERRORS`].
    pub session: Option<OpenedSession>,
}

impl OpenSessionResponse {
    pub const LEN: usize = 36;

    /// A refusal with `status`.
    pub fn refused(tag: u8, status: u8, console_session_id: u32) -> Self {
        OpenSessionResponse {
            tag,
            status,
            console_session_id,
            session: None,
        }
    }

    /// The payload: a refusal stops after the console's session ID.
    pub fn encode(&self) -> Vec<u8> {
        let privilege = self.session.map_or(0, |s| s.max_privilege);
        let mut v = vec![self.tag, self.status, privilege, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        if let Some(s) = &self.session {
            v.extend_from_slice(&s.bmc_session_id.to_le_bytes());
            for p in algorithm_payloads(s.algorithms) {
                p.encode(&mut v);
            }
        }
        v
    }

    /// The console's side. A status other than "no errors" needs only the header.
    pub fn decode(p: &[u8]) -> Result<Self, WireError> {
        let head = SetupHeader::decode(p)?;
        let status = p[1];
        let session = if status == status::NO_ERRORS {
            need("Open Session Response", p, Self::LEN)?;
            let payloads = [
                AlgorithmPayload::decode(&p[12..20]),
                AlgorithmPayload::decode(&p[20..28]),
                AlgorithmPayload::decode(&p[28..36]),
            ];
            Some(OpenedSession {
                max_privilege: p[2] & 0x0F,
                bmc_session_id: u32_le(&p[8..12]),
                algorithms: checked_algorithms(&payloads)?,
            })
        } else {
            None
        };
        Ok(OpenSessionResponse {
            tag: head.tag,
            status,
            console_session_id: head.session_id,
            session,
        })
    }
}

/// RAKP Message 1 (§13.20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1<'a> {
    pub tag: u8,
    /// SIDc, our session ID.
    pub bmc_session_id: u32,
    /// Rm, the console's random number.
    pub console_random: [u8; 16],
    /// ROLEm, the whole byte: requested privilege in bits 3:0, name-only lookup in bit 4
    /// (bits 7:5 reserved). The whole byte goes into the RAKP HMACs.
    pub role: u8,
    /// The user name length byte, as sent.
    name_len: u8,
    /// Everything after the fixed part: the name, and whatever trails it (ignored).
    rest: &'a [u8],
}

impl<'a> Rakp1<'a> {
    /// The fixed part, up to and including the name length byte.
    pub const LEN: usize = 28;

    /// A RAKP 1 naming `user_name` (at most 255 bytes are sent: the length is one byte).
    pub fn new(
        tag: u8,
        bmc_session_id: u32,
        console_random: [u8; 16],
        role: u8,
        user_name: &'a [u8],
    ) -> Self {
        let name_len = u8::try_from(user_name.len()).unwrap_or(u8::MAX);
        Rakp1 {
            tag,
            bmc_session_id,
            console_random,
            role,
            name_len,
            rest: &user_name[..usize::from(name_len)],
        }
    }

    /// The fixed part; the user name is read by [`Rakp1::user_name`], so that a session
    /// can be looked up (and answered) before its name is judged.
    pub fn decode(p: &'a [u8]) -> Result<Self, WireError> {
        need("RAKP 1", p, Self::LEN)?;
        Ok(Rakp1 {
            tag: p[0],
            bmc_session_id: u32_le(&p[4..8]),
            console_random: array16(&p[8..24]),
            role: p[24],
            name_len: p[27],
            rest: &p[Self::LEN..],
        })
    }

    /// The requested maximum privilege level (bits 3:0 of ROLEm).
    pub fn requested_privilege(&self) -> u8 {
        self.role & 0x0F
    }

    /// UNAMEm: at most [`MAX_USER_NAME`] bytes, all of them in the payload.
    pub fn user_name(&self) -> Result<&'a [u8], WireError> {
        let n = usize::from(self.name_len);
        if n > MAX_USER_NAME {
            return Err(WireError::UserNameTooLong(self.name_len));
        }
        self.rest.get(..n).ok_or(WireError::UserNameTruncated)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, 0, 0, 0];
        v.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        v.extend_from_slice(&self.console_random);
        v.extend_from_slice(&[self.role, 0, 0, self.name_len]);
        v.extend_from_slice(self.rest);
        v
    }
}

/// What a RAKP 2 that carries no error holds beyond the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rakp2Body<'a> {
    /// Rc, our random number.
    pub bmc_random: [u8; 16],
    /// GUIDc, the managed system's GUID.
    pub guid: [u8; 16],
    /// The key exchange authentication code (its length depends on the cipher suite).
    pub auth_code: &'a [u8],
}

/// RAKP Message 2 (§13.21). An error is the 8-byte header only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2<'a> {
    pub tag: u8,
    pub status: u8,
    /// SIDm, the console's session ID.
    pub console_session_id: u32,
    /// `Some` exactly when `status` is [`status::NO_ERRORS`].
    pub body: Option<Rakp2Body<'a>>,
}

impl<'a> Rakp2<'a> {
    /// The fixed part of a RAKP 2 without error (the auth code follows).
    pub const LEN: usize = 40;

    pub fn refused(tag: u8, status: u8, console_session_id: u32) -> Self {
        Rakp2 {
            tag,
            status,
            console_session_id,
            body: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        if let Some(b) = &self.body {
            v.extend_from_slice(&b.bmc_random);
            v.extend_from_slice(&b.guid);
            v.extend_from_slice(b.auth_code);
        }
        v
    }

    /// The console's side. A status other than "no errors" needs only the header.
    pub fn decode(p: &'a [u8]) -> Result<Self, WireError> {
        let head = SetupHeader::decode(p)?;
        let status = p[1];
        let body = if status == status::NO_ERRORS {
            need("RAKP 2", p, Self::LEN)?;
            Some(Rakp2Body {
                bmc_random: array16(&p[8..24]),
                guid: array16(&p[24..40]),
                auth_code: &p[Self::LEN..],
            })
        } else {
            None
        };
        Ok(Rakp2 {
            tag: head.tag,
            status,
            console_session_id: head.session_id,
            body,
        })
    }
}

/// RAKP Message 3 (§13.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3<'a> {
    pub tag: u8,
    /// The console's verdict on RAKP 2 ([`status::NO_ERRORS`] if it checked out).
    pub status: u8,
    /// SIDc, our session ID.
    pub bmc_session_id: u32,
    /// The key exchange authentication code: everything after the header (empty when the
    /// console reports an error; its length is the cipher suite's, which the caller checks).
    pub auth_code: &'a [u8],
}

impl<'a> Rakp3<'a> {
    pub const LEN: usize = 8;

    pub fn decode(p: &'a [u8]) -> Result<Self, WireError> {
        need("RAKP 3", p, Self::LEN)?;
        Ok(Rakp3 {
            tag: p[0],
            status: p[1],
            bmc_session_id: u32_le(&p[4..8]),
            auth_code: &p[Self::LEN..],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        v.extend_from_slice(self.auth_code);
        v
    }
}

/// RAKP Message 4 (§13.23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4<'a> {
    pub tag: u8,
    pub status: u8,
    /// SIDm, the console's session ID.
    pub console_session_id: u32,
    /// The integrity check value: everything after the header (empty with an error).
    pub icv: &'a [u8],
}

impl<'a> Rakp4<'a> {
    pub const LEN: usize = 8;

    pub fn refused(tag: u8, status: u8, console_session_id: u32) -> Self {
        Rakp4 {
            tag,
            status,
            console_session_id,
            icv: &[],
        }
    }

    pub fn decode(p: &'a [u8]) -> Result<Self, WireError> {
        let head = SetupHeader::decode(p)?;
        Ok(Rakp4 {
            tag: head.tag,
            status: p[1],
            console_session_id: head.session_id,
            icv: &p[Self::LEN..],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        v.extend_from_slice(self.icv);
        v
    }
}

/// IPMI message errors.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum MessageError {
    #[error("IPMI message too short")]
    Truncated,
    #[error("IPMI header checksum wrong")]
    HeaderChecksum,
    #[error("IPMI data checksum wrong")]
    DataChecksum,
    #[error("a response where a request was expected")]
    NotARequest,
}

/// Two's-complement checksum: the byte that makes `bytes` plus it sum to zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI LAN request message (§13.8): rsAddr, netFn/rsLUN, chk1, rqAddr, rqSeq/rqLUN, cmd,
/// data, chk2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpmiRequest {
    pub rs_addr: u8,
    pub netfn: u8,
    pub rs_lun: u8,
    pub rq_addr: u8,
    pub rq_seq: u8,
    pub rq_lun: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
}

impl IpmiRequest {
    pub fn decode(m: &[u8]) -> Result<Self, MessageError> {
        check_frame(m, 7)?;
        let netfn = m[1] >> 2;
        if netfn & 1 != 0 {
            return Err(MessageError::NotARequest);
        }
        Ok(IpmiRequest {
            rs_addr: m[0],
            netfn,
            rs_lun: m[1] & 3,
            rq_addr: m[3],
            rq_seq: m[4] >> 2,
            rq_lun: m[4] & 3,
            cmd: m[5],
            data: m[6..m.len() - 1].to_vec(),
        })
    }

    /// Encode (the remote console's side; tests and fuzz seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.rs_addr, (self.netfn << 2) | (self.rs_lun & 3)];
        v.push(checksum(&v));
        let body_start = v.len();
        v.push(self.rq_addr);
        v.push((self.rq_seq << 2) | (self.rq_lun & 3));
        v.push(self.cmd);
        v.extend_from_slice(&self.data);
        let c = checksum(&v[body_start..]);
        v.push(c);
        v
    }

    /// The response message to this request: rqAddr, netFn+1/rqLUN, chk1, rsAddr,
    /// rqSeq/rsLUN, cmd, completion code, data, chk2.
    pub fn response(&self, cc: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![self.rq_addr, ((self.netfn | 1) << 2) | (self.rq_lun & 3)];
        v.push(checksum(&v));
        let body_start = v.len();
        v.push(self.rs_addr);
        v.push((self.rq_seq << 2) | (self.rs_lun & 3));
        v.push(self.cmd);
        v.push(cc);
        v.extend_from_slice(data);
        let c = checksum(&v[body_start..]);
        v.push(c);
        v
    }
}

/// An IPMI message's frame: at least `min` bytes (a request has no completion code, a
/// response one more byte), both checksums right.
fn check_frame(m: &[u8], min: usize) -> Result<(), MessageError> {
    if m.len() < min {
        return Err(MessageError::Truncated);
    }
    if checksum(&m[..2]) != m[2] {
        return Err(MessageError::HeaderChecksum);
    }
    let last = m.len() - 1;
    if checksum(&m[3..last]) != m[last] {
        return Err(MessageError::DataChecksum);
    }
    Ok(())
}

/// A decoded IPMI response (the remote console's side; tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpmiResponse {
    pub netfn: u8,
    pub rq_seq: u8,
    pub cmd: u8,
    pub cc: u8,
    pub data: Vec<u8>,
}

impl IpmiResponse {
    pub fn decode(m: &[u8]) -> Result<Self, MessageError> {
        check_frame(m, 8)?;
        Ok(IpmiResponse {
            netfn: m[1] >> 2,
            rq_seq: m[4] >> 2,
            cmd: m[5],
            cc: m[6],
            data: m[7..m.len() - 1].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asf_ping_pong() {
        let ping = asf_ping(0x42);
        assert_eq!(parse(&ping), Ok(Packet::AsfPing { tag: 0x42 }));
        let pong = asf_pong(0x42);
        assert_eq!(pong.len(), 4 + 8 + 16);
        assert_eq!(&pong[..4], &[0x06, 0x00, 0xFF, 0x06]);
        assert_eq!(
            &pong[4..12],
            &[0x00, 0x00, 0x11, 0xBE, 0x40, 0x42, 0x00, 0x10]
        );
        assert_eq!(pong[20], 0x81);
    }

    // ipmitool's pre-session Get Channel Authentication Capabilities, byte for byte as the
    // capture test records it (rqSeq 0, channel 0x8E, privilege ADMINISTRATOR).
    #[test]
    fn ipmitool_get_channel_auth_caps_v15() {
        let d = [
            0x06, 0x00, 0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09,
            0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5,
        ];
        let Ok(Packet::Ipmi15 {
            seq: 0,
            session_id: 0,
            message,
        }) = parse(&d)
        else {
            panic!("not parsed: {:?}", parse(&d));
        };
        let req = IpmiRequest::decode(message);
        assert_eq!(
            req,
            Ok(IpmiRequest {
                rs_addr: 0x20,
                netfn: 0x06,
                rs_lun: 0,
                rq_addr: 0x81,
                rq_seq: 0,
                rq_lun: 0,
                cmd: 0x38,
                data: vec![0x8e, 0x04],
            })
        );
        assert_eq!(req.map(|r| r.encode()), Ok(message.to_vec()));
    }

    #[test]
    fn checksums_are_checked() {
        let r = IpmiRequest {
            rs_addr: 0x20,
            netfn: 6,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq: 5,
            rq_lun: 0,
            cmd: 1,
            data: vec![],
        };
        let mut m = r.encode();
        assert_eq!(IpmiRequest::decode(&m), Ok(r.clone()));
        m[2] ^= 1;
        assert_eq!(IpmiRequest::decode(&m), Err(MessageError::HeaderChecksum));
        m[2] ^= 1;
        let l = m.len() - 1;
        m[l] ^= 1;
        assert_eq!(IpmiRequest::decode(&m), Err(MessageError::DataChecksum));
        assert_eq!(IpmiRequest::decode(&m[..6]), Err(MessageError::Truncated));
        let resp = r.response(0xC1, &[1, 2]);
        assert_eq!(
            IpmiResponse::decode(&resp),
            Ok(IpmiResponse {
                netfn: 7,
                rq_seq: 5,
                cmd: 1,
                cc: 0xC1,
                data: vec![1, 2]
            })
        );
        // A response is not a request.
        assert_eq!(IpmiRequest::decode(&resp), Err(MessageError::NotARequest));
    }

    #[test]
    fn rmcpp_trailer_round_trip() {
        for n in 0..9 {
            let payload: Vec<u8> = (0..n).collect();
            let d = rmcpp_authenticated(PAYLOAD_IPMI, true, 0x1234, 7, &payload, |c| {
                assert_eq!(c.len() % 4, 0);
                vec![0xAB; 12]
            });
            let Ok(Packet::Rmcpp(p)) = parse(&d) else {
                panic!("not rmcp+")
            };
            assert!(p.encrypted && p.authenticated);
            assert_eq!((p.session_id, p.seq, p.payload), (0x1234, 7, &payload[..]));
            let (covered, code) = p.integrity_parts(12).unwrap_or_default();
            assert_eq!(code, &[0xAB; 12]);
            assert_eq!(covered.len() + 12 + 4, d.len());
            assert_eq!(p.integrity_parts(16), None);
        }
    }

    #[test]
    fn malformed_framing_is_rejected() {
        assert_eq!(parse(&[]), Err(ParseError::Truncated));
        assert_eq!(parse(&[5, 0, 0xff, 7]), Err(ParseError::BadRmcpVersion));
        assert_eq!(parse(&[6, 0, 0xff, 8]), Err(ParseError::BadClass(8)));
        assert_eq!(parse(&[6, 0, 0xff, 7, 2]), Err(ParseError::Ipmi15Auth(2)));
        assert_eq!(parse(&[6, 0, 0xff, 7]), Err(ParseError::Truncated));
        let mut d = rmcpp_plain(PAYLOAD_IPMI, 0, 0, &[1, 2, 3]);
        d.truncate(d.len() - 1);
        assert_eq!(parse(&d), Err(ParseError::BadLength));
        assert_eq!(parse(&vec![6; 2000]), Err(ParseError::TooLong));
    }

    // ---- session-setup payloads ----

    /// ipmitool's Open Session Request for cipher suite 17 at "highest available" privilege,
    /// as captured (fuzz seed `packet/ipmitool-002`).
    const OPEN_17: [u8; 32] = [
        0x00, 0x00, 0x00, 0x00, 0xa4, 0xa3, 0xa2, 0xa0, // tag, privilege, reserved, SIDm
        0x00, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x00, // RAKP-HMAC-SHA256
        0x01, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x00, // HMAC-SHA256-128
        0x02, 0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, // AES-CBC-128
    ];

    fn suite17() -> Algorithms {
        Algorithms::from((3, 4, 1))
    }

    #[test]
    fn setup_header() {
        assert_eq!(
            SetupHeader::decode(&OPEN_17),
            Ok(SetupHeader {
                tag: 0,
                session_id: 0xa0a2_a3a4
            })
        );
        for n in 0..SetupHeader::LEN {
            assert_eq!(
                SetupHeader::decode(&OPEN_17[..n]),
                Err(WireError::Truncated {
                    what: "session-setup header",
                    need: 8,
                    got: n
                })
            );
        }
    }

    #[test]
    fn open_session_request_decodes_and_round_trips() {
        let r = OpenSessionRequest::decode(&OPEN_17);
        let want = OpenSessionRequest::new(0, 0, 0xa0a2_a3a4, suite17());
        assert_eq!(r.as_ref(), Ok(&want));
        assert_eq!(want.algorithms(), Ok(suite17()));
        assert_eq!(want.encode(), OPEN_17);
        // Anything after the 32 bytes is ignored.
        let mut long = OPEN_17.to_vec();
        long.extend_from_slice(&[0xEE; 4]);
        assert_eq!(OpenSessionRequest::decode(&long), Ok(want));
        for n in 0..OpenSessionRequest::LEN {
            assert!(
                matches!(
                    OpenSessionRequest::decode(&OPEN_17[..n]),
                    Err(WireError::Truncated { need: 32, .. })
                ),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn open_session_request_fixed_fields_and_reserved_bits() {
        // The payload types and lengths are fixed by the spec: anything else is refused.
        for (at, value, index) in [
            (8, 1, 0),
            (11, 0, 0),
            (16, 2, 1),
            (19, 9, 1),
            (24, 0, 2),
            (27, 16, 2),
        ] {
            let mut p = OPEN_17;
            p[at] = value;
            let r = OpenSessionRequest::decode(&p).map(|r| r.algorithms());
            assert!(
                matches!(r, Ok(Err(WireError::BadAlgorithmPayload { index: i, .. })) if i == index),
                "byte {at} = {value}: {r:?}"
            );
        }
        // Reserved bits and bytes are ignored on receipt: privilege bits 7:4, the reserved
        // bytes of the header and of each algorithm payload, algorithm bits 7:6.
        let mut p = OPEN_17;
        p[1] = 0xF4;
        for at in [
            2, 3, 9, 10, 13, 14, 15, 17, 18, 21, 22, 23, 25, 26, 29, 30, 31,
        ] {
            p[at] = 0xFF;
        }
        p[12] |= 0xC0;
        let r = OpenSessionRequest::decode(&p);
        assert_eq!(r.as_ref().map(|r| r.requested_privilege), Ok(4));
        assert_eq!(r.map(|r| r.algorithms()), Ok(Ok(suite17())));
    }

    #[test]
    fn open_session_response_both_ways() {
        let ok = OpenSessionResponse {
            tag: 7,
            status: status::NO_ERRORS,
            console_session_id: 0x0403_0201,
            session: Some(OpenedSession {
                max_privilege: 4,
                bmc_session_id: 0x0807_0605,
                algorithms: suite17(),
            }),
        };
        let bytes = ok.encode();
        assert_eq!(bytes.len(), OpenSessionResponse::LEN);
        assert_eq!(&bytes[..12], &[7, 0, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[12..], &OPEN_17[8..]);
        assert_eq!(OpenSessionResponse::decode(&bytes), Ok(ok));
        // A refusal is the header alone, privilege 0.
        let no = OpenSessionResponse::refused(7, status::INVALID_ROLE, 0x0403_0201);
        assert_eq!(no.encode(), [7, 0x09, 0, 0, 1, 2, 3, 4]);
        assert_eq!(OpenSessionResponse::decode(&no.encode()), Ok(no));
        for n in 0..OpenSessionResponse::LEN {
            assert!(
                OpenSessionResponse::decode(&bytes[..n]).is_err(),
                "{n} bytes"
            );
        }
        let mut bad = bytes.clone();
        bad[15] = 0;
        assert!(matches!(
            OpenSessionResponse::decode(&bad),
            Err(WireError::BadAlgorithmPayload { index: 0, .. })
        ));
    }

    /// ipmitool's RAKP 1 for "admin" at Administrator, name-only lookup, as captured
    /// (fuzz seed `packet/ipmitool-003`).
    fn rakp1_admin() -> Vec<u8> {
        let mut p = vec![0x00, 0, 0, 0, 0xbd, 0x37, 0x50, 0xad];
        p.extend_from_slice(&RM);
        p.extend_from_slice(&[0x14, 0, 0, 5]);
        p.extend_from_slice(b"admin");
        p
    }
    const RM: [u8; 16] = [
        0x57, 0xa7, 0x7d, 0x35, 0xc3, 0x9b, 0x85, 0xad, 0x4e, 0x89, 0xe3, 0xa8, 0xaf, 0xd1, 0x0e,
        0xb5,
    ];

    #[test]
    fn rakp1_decodes_and_round_trips() {
        let p = rakp1_admin();
        let r = Rakp1::decode(&p);
        let want = Rakp1::new(0, 0xad50_37bd, RM, 0x14, b"admin");
        assert_eq!(r.as_ref(), Ok(&want));
        assert_eq!(r.as_ref().map(|r| r.user_name()), Ok(Ok(&b"admin"[..])));
        assert_eq!(want.requested_privilege(), 4);
        assert_eq!(want.encode(), p);
        for n in 0..Rakp1::LEN {
            assert!(
                matches!(
                    Rakp1::decode(&p[..n]),
                    Err(WireError::Truncated { need: 28, .. })
                ),
                "{n} bytes"
            );
        }
        // The fixed part alone decodes; the name is judged on its own.
        for n in Rakp1::LEN..p.len() {
            assert_eq!(
                Rakp1::decode(&p[..n]).map(|r| r.user_name()),
                Ok(Err(WireError::UserNameTruncated)),
                "{n} bytes"
            );
        }
        // Bytes after the name are not part of it.
        let mut long = p.clone();
        long.push(b'x');
        assert_eq!(
            Rakp1::decode(&long).map(|r| r.user_name()),
            Ok(Ok(&b"admin"[..]))
        );
    }

    #[test]
    fn rakp1_name_length_and_reserved_bytes() {
        let mut p = rakp1_admin();
        p[27] = 17;
        p.extend_from_slice(&[b'x'; 12]);
        assert_eq!(
            Rakp1::decode(&p).map(|r| r.user_name()),
            Ok(Err(WireError::UserNameTooLong(17)))
        );
        // An empty name is well formed (a null user; the core finds no such user).
        let mut p = rakp1_admin();
        p.truncate(Rakp1::LEN);
        p[27] = 0;
        assert_eq!(Rakp1::decode(&p).map(|r| r.user_name()), Ok(Ok(&b""[..])));
        // Reserved bytes are ignored; ROLEm is kept whole (it goes into the HMACs).
        let mut p = rakp1_admin();
        for at in [1, 2, 3, 25, 26] {
            p[at] = 0xFF;
        }
        p[24] = 0xF4;
        let r = Rakp1::decode(&p);
        assert_eq!(
            r.as_ref().map(|r| (r.role, r.requested_privilege())),
            Ok((0xF4, 4))
        );
        assert_eq!(r.map(|r| r.user_name()), Ok(Ok(&b"admin"[..])));
    }

    #[test]
    fn rakp2_both_ways() {
        let code = [0xAB; 32];
        let ok = Rakp2 {
            tag: 2,
            status: status::NO_ERRORS,
            console_session_id: 0x0403_0201,
            body: Some(Rakp2Body {
                bmc_random: [0x55; 16],
                guid: [0x42; 16],
                auth_code: &code,
            }),
        };
        let bytes = ok.encode();
        assert_eq!(bytes.len(), Rakp2::LEN + 32);
        assert_eq!(&bytes[..8], &[2, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(Rakp2::decode(&bytes), Ok(ok));
        for n in 0..Rakp2::LEN {
            assert!(Rakp2::decode(&bytes[..n]).is_err(), "{n} bytes");
        }
        let no = Rakp2::refused(2, status::UNAUTHORIZED_NAME, 0x0403_0201);
        assert_eq!(no.encode(), [2, 0x0D, 0, 0, 1, 2, 3, 4]);
        assert_eq!(Rakp2::decode(&no.encode()), Ok(no));
    }

    #[test]
    fn rakp3_decodes_and_round_trips() {
        let code = [0xCD; 20];
        let r = Rakp3 {
            tag: 3,
            status: status::NO_ERRORS,
            bmc_session_id: 0x1234_5678,
            auth_code: &code,
        };
        let mut bytes = r.encode();
        assert_eq!(&bytes[..8], &[3, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(Rakp3::decode(&bytes).as_ref(), Ok(&r));
        for n in 0..Rakp3::LEN {
            assert!(
                matches!(
                    Rakp3::decode(&bytes[..n]),
                    Err(WireError::Truncated { need: 8, .. })
                ),
                "{n} bytes"
            );
        }
        // A console's error report carries no auth code; reserved bytes are ignored.
        assert_eq!(
            Rakp3::decode(&[3, 0x0F, 0xFF, 0xFF, 1, 0, 0, 0]),
            Ok(Rakp3 {
                tag: 3,
                status: 0x0F,
                bmc_session_id: 1,
                auth_code: &[]
            })
        );
        bytes[2] = 0xFF;
        assert_eq!(Rakp3::decode(&bytes), Ok(r));
    }

    #[test]
    fn rakp4_both_ways() {
        let icv = [0x99; 16];
        let ok = Rakp4 {
            tag: 3,
            status: status::NO_ERRORS,
            console_session_id: 0x0403_0201,
            icv: &icv,
        };
        let bytes = ok.encode();
        assert_eq!(bytes.len(), 8 + 16);
        assert_eq!(Rakp4::decode(&bytes), Ok(ok));
        for n in 0..Rakp4::LEN {
            assert!(Rakp4::decode(&bytes[..n]).is_err(), "{n} bytes");
        }
        let no = Rakp4::refused(3, status::INVALID_INTEGRITY_CHECK, 0x0403_0201);
        assert_eq!(no.encode(), [3, 0x0F, 0, 0, 1, 2, 3, 4]);
        assert_eq!(Rakp4::decode(&no.encode()), Ok(no));
    }
}
