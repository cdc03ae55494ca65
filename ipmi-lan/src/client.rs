//! A minimal RMCP+ remote console (the console's side of IPMI 2.0 §13): Open Session, RAKP
//! 1–4 with cipher suite 3 or 17, then sealed (authenticated and encrypted) requests.
//!
//! It is written against [`crate::wire`] and [`crate::crypto`] only, never [`crate::core`],
//! so it checks the BMC side independently: it drives the core in unit tests, decrypts
//! captured ipmitool traffic in the capture test (our key derivation against the real
//! client's), builds fuzz seeds, and is the base for tools that talk to a BMC.
//!
//! The console builds datagrams and reads the BMC's answers; sending them is the caller's
//! business (a UDP socket, or a core in a test). Everything read from the BMC is checked and
//! a bad answer is a [`ClientError`], never a panic.
//!
//! ```text
//! let mut c = Client::new(CipherSuite::Suite17, b"admin", b"password", 0x14);
//! send(c.open_session());      c.on_open_session_response(&reply)?;
//! send(c.rakp1(random_16()));  c.on_rakp2(&reply)?;
//! send(c.rakp3(0));            c.on_rakp4(&reply)?;
//! send(c.request(netfn, cmd, &data));  let response = c.on_response(&reply)?;
//! ```
#![warn(missing_docs)]

use crate::crypto::{CipherSuite, RakpParams, SessionKeys, ct_eq};
use crate::wire::{
    self, IpmiRequest, IpmiResponse, OpenSessionRequest, OpenSessionResponse, Packet, Rakp1, Rakp2,
    Rakp3, Rakp4, WireError,
};

/// Why an answer from the BMC was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ClientError {
    /// Not the packet this step expects (wrong type, session, framing or layout).
    #[error("unexpected packet: {0}")]
    Unexpected(&'static str),
    /// A session-setup payload that does not decode.
    #[error("malformed answer: {0}")]
    Malformed(#[from] WireError),
    /// The BMC refused with this RMCP+ status code ([`wire::status`]).
    #[error("status {0:#04x}")]
    Status(u8),
    /// RAKP 2 was not computed with our password: wrong password, or no such user.
    #[error("RAKP 2 auth code does not match the password")]
    Rakp2Mismatch,
    /// RAKP 4 was not computed from the session integrity key we derived.
    #[error("RAKP 4 integrity check value does not match")]
    Rakp4Mismatch,
    /// A session packet whose AuthCode does not verify.
    #[error("integrity check failed")]
    Integrity,
    /// The OS gave no random bytes (session IDs, Rm and IVs of a [`Client::randomized`]).
    #[error("no random bytes from the OS")]
    NoRandomness,
}

/// The message tags the console puts in its setup messages (echoed by the BMC).
const TAG_OPEN_SESSION: u8 = 0x01;
const TAG_RAKP1: u8 = 0x02;
const TAG_RAKP3: u8 = 0x03;

/// Remote console state for one session.
#[derive(Clone, Debug)]
pub struct Client {
    /// The cipher suite proposed in Open Session.
    pub suite: CipherSuite,
    /// SIDm, our session ID (the BMC addresses its packets to it).
    pub console_id: u32,
    /// SIDc, the BMC's session ID, from the Open Session Response.
    pub bmc_id: u32,
    /// The user name sent in RAKP 1.
    pub name: Vec<u8>,
    /// The password (the RAKP HMAC key K_UID).
    pub password: Vec<u8>,
    /// The BMC key K_G for two-key logins (the password is used when absent).
    pub kg: Option<Vec<u8>>,
    /// ROLEm (privilege | lookup bit).
    pub role: u8,
    /// Rm, our random number (set by [`Client::rakp1`]).
    pub rm: [u8; 16],
    /// Rc, the BMC's random number, from RAKP 2.
    pub rc: [u8; 16],
    /// GUIDc, the BMC's GUID, from RAKP 2.
    pub guid: [u8; 16],
    /// The session keys, once RAKP 4 checked out.
    pub keys: Option<SessionKeys>,
    /// The sequence number of the last sealed request sent by [`Client::request`].
    pub out_seq: u32,
    /// The IPMI request sequence number (6 bits) of the next request.
    pub rq_seq: u8,
    iv_counter: u8,
    /// Draw each request's IV from the OS ([`Client::randomized`]) instead of counting.
    random_ivs: bool,
}

impl Client {
    /// A console for `name`/`password` asking for `role` (the RAKP 1 byte: privilege level
    /// in bits 3:0, name-only lookup in bit 4; ipmitool sends 0x14 for Administrator).
    pub fn new(suite: CipherSuite, name: &[u8], password: &[u8], role: u8) -> Self {
        Client {
            suite,
            console_id: 0xA0A2_A3A4,
            bmc_id: 0,
            name: name.to_vec(),
            password: password.to_vec(),
            kg: None,
            role,
            rm: [0x11; 16],
            rc: [0; 16],
            guid: [0; 16],
            keys: None,
            out_seq: 0,
            rq_seq: 0,
            iv_counter: 0,
            random_ivs: false,
        }
    }

    /// The console a tool facing a real network uses: a random console session ID and Rm,
    /// and a fresh random IV for every request ([`Client::new`]'s fixed values and counted
    /// IVs keep tests reproducible, but would let an eavesdropper link sessions and see
    /// repeated first blocks).
    pub fn randomized(mut self) -> Result<Self, ClientError> {
        let mut id = [0u8; 4];
        while u32::from_le_bytes(id) == 0 {
            getrandom::fill(&mut id).map_err(|_| ClientError::NoRandomness)?;
        }
        self.console_id = u32::from_le_bytes(id);
        getrandom::fill(&mut self.rm).map_err(|_| ClientError::NoRandomness)?;
        self.random_ivs = true;
        Ok(self)
    }

    /// Open Session Request with explicit algorithms (so tests can ask for suite 0).
    pub fn open_session_with(&self, priv_level: u8, algs: (u8, u8, u8)) -> Vec<u8> {
        let p = OpenSessionRequest::new(TAG_OPEN_SESSION, priv_level, self.console_id, algs.into());
        wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_REQUEST, 0, 0, &p.encode())
    }

    /// Open Session Request for our suite at the privilege level of `role`.
    pub fn open_session(&self) -> Vec<u8> {
        self.open_session_with(self.role & 0x0F, self.suite.algorithms())
    }

    /// The payload of a session-less setup datagram of type `want`.
    fn payload_of(d: &[u8], want: u8) -> Result<&[u8], ClientError> {
        match wire::parse(d) {
            Ok(Packet::Rmcpp(p)) if p.payload_type == want && p.session_id == 0 => Ok(p.payload),
            _ => Err(ClientError::Unexpected("not the expected setup payload")),
        }
    }

    /// Read the Open Session Response; returns the maximum privilege level granted.
    pub fn on_open_session_response(&mut self, d: &[u8]) -> Result<u8, ClientError> {
        let r =
            OpenSessionResponse::decode(Self::payload_of(d, wire::PAYLOAD_OPEN_SESSION_RESPONSE)?)?;
        if r.status != wire::status::NO_ERRORS {
            return Err(ClientError::Status(r.status));
        }
        let Some(s) = r.session else {
            return Err(ClientError::Unexpected("short open session response"));
        };
        if r.console_session_id != self.console_id {
            return Err(ClientError::Unexpected(
                "open session response for another console",
            ));
        }
        if s.algorithms != self.suite.algorithms().into() {
            return Err(ClientError::Unexpected("the BMC chose other algorithms"));
        }
        self.bmc_id = s.bmc_session_id;
        Ok(s.max_privilege)
    }

    /// RAKP 1 with our random number `rm`.
    pub fn rakp1(&mut self, rm: [u8; 16]) -> Vec<u8> {
        self.rm = rm;
        let p = Rakp1::new(TAG_RAKP1, self.bmc_id, rm, self.role, &self.name);
        wire::rmcpp_plain(wire::PAYLOAD_RAKP1, 0, 0, &p.encode())
    }

    fn params(&self) -> RakpParams<'_> {
        RakpParams {
            suite: self.suite,
            console_session_id: self.console_id,
            bmc_session_id: self.bmc_id,
            console_random: &self.rm,
            bmc_random: &self.rc,
            guid: &self.guid,
            role: self.role,
            user_name: &self.name,
        }
    }

    /// Read RAKP 2 and check its auth code against our password.
    pub fn on_rakp2(&mut self, d: &[u8]) -> Result<(), ClientError> {
        let r = Rakp2::decode(Self::payload_of(d, wire::PAYLOAD_RAKP2)?)?;
        if r.status != wire::status::NO_ERRORS {
            return Err(ClientError::Status(r.status));
        }
        let Some(body) = r.body else {
            return Err(ClientError::Unexpected("short RAKP 2"));
        };
        if body.auth_code.len() != self.suite.hmac_len() {
            return Err(ClientError::Unexpected("RAKP 2 length"));
        }
        self.rc = body.bmc_random;
        self.guid = body.guid;
        let want = self.params().rakp2_auth_code(&self.password);
        if !ct_eq(&want, body.auth_code) {
            return Err(ClientError::Rakp2Mismatch);
        }
        Ok(())
    }

    /// RAKP 3; `status` non-zero reports a failed RAKP 2 check to the BMC.
    pub fn rakp3(&self, status: u8) -> Vec<u8> {
        let code = if status == wire::status::NO_ERRORS {
            self.params().rakp3_auth_code(&self.password)
        } else {
            Vec::new()
        };
        let p = Rakp3 {
            tag: TAG_RAKP3,
            status,
            bmc_session_id: self.bmc_id,
            auth_code: &code,
        };
        wire::rmcpp_plain(wire::PAYLOAD_RAKP3, 0, 0, &p.encode())
    }

    /// Read RAKP 4, check it, and keep the session keys.
    pub fn on_rakp4(&mut self, d: &[u8]) -> Result<(), ClientError> {
        let r = Rakp4::decode(Self::payload_of(d, wire::PAYLOAD_RAKP4)?)?;
        if r.status != wire::status::NO_ERRORS {
            return Err(ClientError::Status(r.status));
        }
        let params = self.params();
        let keys = params.session_keys(&self.password, self.kg.as_deref());
        if !ct_eq(&params.rakp4_icv(&keys.sik), r.icv) {
            return Err(ClientError::Rakp4Mismatch);
        }
        self.keys = Some(keys);
        Ok(())
    }

    /// A sealed (authenticated + encrypted) request at sequence number `seq`; empty before
    /// the session is established (or, randomized, if the OS gives no IV).
    pub fn request_at(&mut self, seq: u32, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        let req = IpmiRequest {
            rs_addr: wire::BMC_SLAVE_ADDR,
            netfn,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq: self.rq_seq,
            rq_lun: 0,
            cmd,
            data: data.to_vec(),
        };
        self.rq_seq = self.rq_seq.wrapping_add(1) & 0x3F;
        // Distinct IVs per request are all CBC needs from a test console; a randomized one
        // draws each from the OS.
        self.iv_counter = self.iv_counter.wrapping_add(1);
        let mut iv = [self.iv_counter; 16];
        if self.random_ivs && getrandom::fill(&mut iv).is_err() {
            return Vec::new();
        }
        let Some(keys) = &self.keys else {
            return Vec::new();
        };
        let payload = keys.encrypt(&iv, &req.encode());
        wire::rmcpp_authenticated(wire::PAYLOAD_IPMI, true, self.bmc_id, seq, &payload, |c| {
            keys.auth_code(c)
        })
    }

    /// A sealed request at the next sequence number (0 is never used: it is not valid in a
    /// session).
    pub fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        self.out_seq = self.out_seq.wrapping_add(1).max(1);
        self.request_at(self.out_seq, netfn, cmd, data)
    }

    /// Check and open a sealed response.
    pub fn on_response(&self, d: &[u8]) -> Result<IpmiResponse, ClientError> {
        let keys = self
            .keys
            .as_ref()
            .ok_or(ClientError::Unexpected("no session"))?;
        let msg = unseal(keys, self.console_id, d)?;
        IpmiResponse::decode(&msg).map_err(|_| ClientError::Unexpected("bad IPMI response"))
    }
}

/// Verify and decrypt a sealed RMCP+ IPMI packet addressed to `session_id`; returns the
/// plaintext IPMI message.
pub fn unseal(keys: &SessionKeys, session_id: u32, d: &[u8]) -> Result<Vec<u8>, ClientError> {
    let Ok(Packet::Rmcpp(p)) = wire::parse(d) else {
        return Err(ClientError::Unexpected("not RMCP+"));
    };
    if p.session_id != session_id || !p.authenticated || !p.encrypted {
        return Err(ClientError::Unexpected(
            "not a sealed packet of this session",
        ));
    }
    let (covered, code) = p
        .integrity_parts(keys.suite.auth_code_len())
        .ok_or(ClientError::Integrity)?;
    if !keys.verify_auth_code(covered, code) {
        return Err(ClientError::Integrity);
    }
    keys.decrypt(p.payload)
        .ok_or(ClientError::Unexpected("does not decrypt"))
}

/// What a passive observer who knows the password derives from a captured handshake
/// (Open Session Request, RAKP 1 and RAKP 2 datagrams): the session keys, the BMC session
/// ID and the console session ID. Used to decrypt real ipmitool traffic in tests.
pub fn observe(
    open_request: &[u8],
    rakp1: &[u8],
    rakp2: &[u8],
    password: &[u8],
    kg: Option<&[u8]>,
) -> Result<(SessionKeys, u32, u32), ClientError> {
    let o = OpenSessionRequest::decode(Client::payload_of(
        open_request,
        wire::PAYLOAD_OPEN_SESSION_REQUEST,
    )?)?;
    let r1 = Rakp1::decode(Client::payload_of(rakp1, wire::PAYLOAD_RAKP1)?)?;
    let algs = o.algorithms()?;
    let suite = CipherSuite::from_algorithms(algs.auth, algs.integrity, algs.confidentiality)
        .ok_or(ClientError::Unexpected("cipher suite"))?;
    let mut c = Client::new(suite, r1.user_name()?, password, r1.role);
    c.kg = kg.map(<[u8]>::to_vec);
    c.console_id = o.console_session_id;
    c.bmc_id = r1.bmc_session_id;
    c.rm = r1.console_random;
    c.on_rakp2(rakp2)?;
    let keys = c.params().session_keys(password, kg);
    Ok((keys, c.bmc_id, c.console_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Algorithms, OpenedSession, Rakp2Body, status};

    fn plain(payload_type: u8, payload: &[u8]) -> Vec<u8> {
        wire::rmcpp_plain(payload_type, 0, 0, payload)
    }

    fn client() -> Client {
        Client::new(CipherSuite::Suite17, b"admin", b"password", 0x14)
    }

    /// Every prefix of a good answer, and the answer inside a datagram of the wrong kind,
    /// is an error, never a panic, and changes nothing a later good answer depends on.
    #[test]
    fn bad_answers_from_the_bmc_are_errors() {
        let c = client();
        let open = OpenSessionResponse {
            tag: 1,
            status: status::NO_ERRORS,
            console_session_id: c.console_id,
            session: Some(OpenedSession {
                max_privilege: 4,
                bmc_session_id: 0x1234,
                algorithms: CipherSuite::Suite17.algorithms().into(),
            }),
        };
        let good = plain(wire::PAYLOAD_OPEN_SESSION_RESPONSE, &open.encode());
        for n in 0..good.len() {
            assert!(
                client().on_open_session_response(&good[..n]).is_err(),
                "{n}"
            );
        }
        assert_eq!(
            client().on_open_session_response(&plain(wire::PAYLOAD_RAKP2, &open.encode())),
            Err(ClientError::Unexpected("not the expected setup payload"))
        );
        // Another console's answer, or algorithms we did not propose: refused.
        let other = OpenSessionResponse {
            console_session_id: 7,
            ..open.clone()
        };
        assert!(matches!(
            client().on_open_session_response(&plain(0x11, &other.encode())),
            Err(ClientError::Unexpected(_))
        ));
        let weaker = OpenSessionResponse {
            session: open.session.map(|s| OpenedSession {
                algorithms: Algorithms::from((1, 1, 1)),
                ..s
            }),
            ..open.clone()
        };
        assert!(matches!(
            client().on_open_session_response(&plain(0x11, &weaker.encode())),
            Err(ClientError::Unexpected(_))
        ));
        let mut c = client();
        assert_eq!(c.on_open_session_response(&good), Ok(4));
        assert_eq!(c.bmc_id, 0x1234);

        // RAKP 2: truncated, wrong length, refused, forged.
        let code = [0u8; 32];
        let rakp2 = Rakp2 {
            tag: 2,
            status: status::NO_ERRORS,
            console_session_id: c.console_id,
            body: Some(Rakp2Body {
                bmc_random: [1; 16],
                guid: [2; 16],
                auth_code: &code,
            }),
        };
        let d = plain(wire::PAYLOAD_RAKP2, &rakp2.encode());
        for n in 0..d.len() {
            assert!(c.clone().on_rakp2(&d[..n]).is_err(), "{n}");
        }
        assert_eq!(c.clone().on_rakp2(&d), Err(ClientError::Rakp2Mismatch));
        let refused = Rakp2::refused(2, status::UNAUTHORIZED_NAME, c.console_id);
        assert_eq!(
            c.clone()
                .on_rakp2(&plain(wire::PAYLOAD_RAKP2, &refused.encode())),
            Err(ClientError::Status(status::UNAUTHORIZED_NAME))
        );

        // RAKP 4: truncated or forged.
        let rakp4 = Rakp4 {
            tag: 3,
            status: status::NO_ERRORS,
            console_session_id: c.console_id,
            icv: &[0; 16],
        };
        let d = plain(wire::PAYLOAD_RAKP4, &rakp4.encode());
        for n in 0..d.len() {
            assert!(c.clone().on_rakp4(&d[..n]).is_err(), "{n}");
        }
        assert_eq!(c.clone().on_rakp4(&d), Err(ClientError::Rakp4Mismatch));

        // No session yet: sealed requests are empty and responses are refused.
        assert!(c.request(6, 1, &[]).is_empty());
        assert_eq!(
            c.on_response(&d),
            Err(ClientError::Unexpected("no session"))
        );
        for junk in [
            &[][..],
            &[6, 0, 0xff, 7],
            &[6, 0, 0xff, 7, 6, 0xC0, 1, 0, 0, 0],
        ] {
            assert!(c.on_open_session_response(junk).is_err());
            assert!(c.on_rakp2(junk).is_err());
            assert!(c.on_rakp4(junk).is_err());
        }
    }

    #[test]
    fn observe_refuses_malformed_handshakes() {
        let c = client();
        let open = c.open_session();
        let r1 = Rakp1::new(2, 0x1234, [5; 16], 0x14, b"admin");
        let rakp1 = plain(wire::PAYLOAD_RAKP1, &r1.encode());
        for n in 0..open.len() {
            assert!(observe(&open[..n], &rakp1, &rakp1, b"pw", None).is_err());
        }
        for n in 0..rakp1.len() {
            assert!(observe(&open, &rakp1[..n], &rakp1, b"pw", None).is_err());
        }
        // A RAKP 2 that is not one.
        assert!(observe(&open, &rakp1, &rakp1, b"pw", None).is_err());
    }

    #[test]
    fn a_randomized_console_draws_its_ids_and_every_iv() -> Result<(), ClientError> {
        let a = client().randomized()?;
        let b = client().randomized()?;
        assert_ne!(a.console_id, 0);
        assert_ne!((a.console_id, a.rm), (b.console_id, b.rm));
        // Same keys, same request twice: the IVs (first 16 bytes of the payload after the
        // 16-byte RMCP+ session header) differ, so the ciphertexts do.
        let mut c = client().randomized()?;
        c.keys = Some(
            crate::crypto::RakpParams {
                suite: c.suite,
                console_session_id: c.console_id,
                bmc_session_id: 1,
                console_random: &[1; 16],
                bmc_random: &[2; 16],
                guid: &[3; 16],
                role: c.role,
                user_name: b"admin",
            }
            .session_keys(b"password", None),
        );
        let (x, y) = (c.request_at(1, 6, 7, &[]), c.request_at(1, 6, 7, &[]));
        assert!(!x.is_empty() && x.len() == y.len());
        assert_ne!(x[16..32], y[16..32], "the IV");
        // The fixed console of the tests counts instead.
        let mut f = client();
        f.keys = c.keys.clone();
        assert_eq!(f.request_at(1, 6, 7, &[])[16..32], [1u8; 16]);
        Ok(())
    }
}
