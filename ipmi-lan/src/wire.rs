//! Byte layouts: RMCP, ASF presence ping/pong, the IPMI 1.5 and RMCP+ session wrappers, and
//! IPMI LAN messages (IPMI 2.0 §13.1–13.8, ASF 2.0 §3.2.4). Parsing never panics and never
//! allocates more than the datagram it is given; everything here is fuzzed.

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
        if m.len() < 7 {
            return Err(MessageError::Truncated);
        }
        if checksum(&m[..2]) != m[2] {
            return Err(MessageError::HeaderChecksum);
        }
        let last = m.len() - 1;
        if checksum(&m[3..last]) != m[last] {
            return Err(MessageError::DataChecksum);
        }
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
            data: m[6..last].to_vec(),
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
        if m.len() < 8 {
            return Err(MessageError::Truncated);
        }
        if checksum(&m[..2]) != m[2] {
            return Err(MessageError::HeaderChecksum);
        }
        let last = m.len() - 1;
        if checksum(&m[3..last]) != m[last] {
            return Err(MessageError::DataChecksum);
        }
        Ok(IpmiResponse {
            netfn: m[1] >> 2,
            rq_seq: m[4] >> 2,
            cmd: m[5],
            cc: m[6],
            data: m[7..last].to_vec(),
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
}
