//! A minimal RMCP+ remote console, written from the spec independently of [`crate::core`]'s
//! code paths: it drives the core in unit tests, decrypts captured ipmitool traffic in the
//! capture test (a cross-check of our key derivation against the real client), and builds
//! fuzz seeds. Not used by the daemon.

use crate::crypto::{CipherSuite, RakpParams, SessionKeys, ct_eq};
use crate::wire::{self, IpmiRequest, IpmiResponse, Packet};

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ClientError {
    #[error("unexpected packet: {0}")]
    Unexpected(&'static str),
    #[error("status {0:#04x}")]
    Status(u8),
    #[error("RAKP 2 auth code does not match the password")]
    Rakp2Mismatch,
    #[error("RAKP 4 integrity check value does not match")]
    Rakp4Mismatch,
    #[error("integrity check failed")]
    Integrity,
}

/// Remote console state for one session.
#[derive(Clone, Debug)]
pub struct Client {
    pub suite: CipherSuite,
    pub console_id: u32,
    pub bmc_id: u32,
    pub name: Vec<u8>,
    pub password: Vec<u8>,
    pub kg: Option<Vec<u8>>,
    /// ROLEm (privilege | lookup bit).
    pub role: u8,
    pub rm: [u8; 16],
    pub rc: [u8; 16],
    pub guid: [u8; 16],
    pub keys: Option<SessionKeys>,
    pub out_seq: u32,
    pub rq_seq: u8,
    iv_counter: u8,
}

impl Client {
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
        }
    }

    /// Open Session Request with explicit algorithms (so tests can ask for suite 0).
    pub fn open_session_with(&self, priv_level: u8, algs: (u8, u8, u8)) -> Vec<u8> {
        let mut p = vec![0x01, priv_level, 0, 0];
        p.extend_from_slice(&self.console_id.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0, 8, algs.0, 0, 0, 0]);
        p.extend_from_slice(&[1, 0, 0, 8, algs.1, 0, 0, 0]);
        p.extend_from_slice(&[2, 0, 0, 8, algs.2, 0, 0, 0]);
        wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_REQUEST, 0, 0, &p)
    }

    pub fn open_session(&self) -> Vec<u8> {
        self.open_session_with(self.role & 0x0F, self.suite.algorithms())
    }

    fn payload_of(d: &[u8], want: u8) -> Result<Vec<u8>, ClientError> {
        match wire::parse(d) {
            Ok(Packet::Rmcpp(p)) if p.payload_type == want && p.session_id == 0 => {
                Ok(p.payload.to_vec())
            }
            _ => Err(ClientError::Unexpected("not the expected setup payload")),
        }
    }

    pub fn on_open_session_response(&mut self, d: &[u8]) -> Result<u8, ClientError> {
        let p = Self::payload_of(d, wire::PAYLOAD_OPEN_SESSION_RESPONSE)?;
        if p.len() < 8 {
            return Err(ClientError::Unexpected("short open session response"));
        }
        if p[1] != 0 {
            return Err(ClientError::Status(p[1]));
        }
        if p.len() < 36 {
            return Err(ClientError::Unexpected("short open session response"));
        }
        self.bmc_id = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
        Ok(p[2])
    }

    pub fn rakp1(&mut self, rm: [u8; 16]) -> Vec<u8> {
        self.rm = rm;
        let mut p = vec![0x02, 0, 0, 0];
        p.extend_from_slice(&self.bmc_id.to_le_bytes());
        p.extend_from_slice(&rm);
        p.extend_from_slice(&[self.role, 0, 0, self.name.len() as u8]);
        p.extend_from_slice(&self.name);
        wire::rmcpp_plain(wire::PAYLOAD_RAKP1, 0, 0, &p)
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

    pub fn on_rakp2(&mut self, d: &[u8]) -> Result<(), ClientError> {
        let p = Self::payload_of(d, wire::PAYLOAD_RAKP2)?;
        if p.len() < 8 {
            return Err(ClientError::Unexpected("short RAKP 2"));
        }
        if p[1] != 0 {
            return Err(ClientError::Status(p[1]));
        }
        if p.len() != 40 + self.suite.hmac_len() {
            return Err(ClientError::Unexpected("RAKP 2 length"));
        }
        self.rc.copy_from_slice(&p[8..24]);
        self.guid.copy_from_slice(&p[24..40]);
        let want = self.params().rakp2_auth_code(&self.password);
        if !ct_eq(&want, &p[40..]) {
            return Err(ClientError::Rakp2Mismatch);
        }
        Ok(())
    }

    /// RAKP 3; `status` non-zero reports a failed RAKP 2 check to the BMC.
    pub fn rakp3(&self, status: u8) -> Vec<u8> {
        let mut p = vec![0x03, status, 0, 0];
        p.extend_from_slice(&self.bmc_id.to_le_bytes());
        if status == 0 {
            p.extend_from_slice(&self.params().rakp3_auth_code(&self.password));
        }
        wire::rmcpp_plain(wire::PAYLOAD_RAKP3, 0, 0, &p)
    }

    pub fn on_rakp4(&mut self, d: &[u8]) -> Result<(), ClientError> {
        let p = Self::payload_of(d, wire::PAYLOAD_RAKP4)?;
        if p.len() < 8 {
            return Err(ClientError::Unexpected("short RAKP 4"));
        }
        if p[1] != 0 {
            return Err(ClientError::Status(p[1]));
        }
        let params = self.params();
        let keys = params.session_keys(&self.password, self.kg.as_deref());
        if !ct_eq(&params.rakp4_icv(&keys.sik), &p[8..]) {
            return Err(ClientError::Rakp4Mismatch);
        }
        self.keys = Some(keys);
        Ok(())
    }

    /// A sealed (authenticated + encrypted) request at sequence number `seq`.
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
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        self.iv_counter = self.iv_counter.wrapping_add(1);
        let Some(keys) = &self.keys else {
            return Vec::new();
        };
        let payload = keys.encrypt(&[self.iv_counter; 16], &req.encode());
        wire::rmcpp_authenticated(wire::PAYLOAD_IPMI, true, self.bmc_id, seq, &payload, |c| {
            keys.auth_code(c)
        })
    }

    /// A sealed request at the next sequence number.
    pub fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        self.out_seq += 1;
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
/// (Open Session Request, RAKP 1 and RAKP 2 datagrams): the session keys and the BMC session
/// ID. Used to decrypt real ipmitool traffic in tests.
pub fn observe(
    open_request: &[u8],
    rakp1: &[u8],
    rakp2: &[u8],
    password: &[u8],
    kg: Option<&[u8]>,
) -> Result<(SessionKeys, u32, u32), ClientError> {
    let o = Client::payload_of(open_request, wire::PAYLOAD_OPEN_SESSION_REQUEST)?;
    let r1 = Client::payload_of(rakp1, wire::PAYLOAD_RAKP1)?;
    let r2 = Client::payload_of(rakp2, wire::PAYLOAD_RAKP2)?;
    if o.len() < 32 || r1.len() < 28 || r2.len() < 40 {
        return Err(ClientError::Unexpected("short handshake"));
    }
    let suite = CipherSuite::from_algorithms(o[12] & 0x3F, o[20] & 0x3F, o[28] & 0x3F)
        .ok_or(ClientError::Unexpected("cipher suite"))?;
    let name_len = usize::from(r1[27]);
    let name = r1
        .get(28..28 + name_len)
        .ok_or(ClientError::Unexpected("name"))?;
    let mut c = Client::new(suite, name, password, r1[24]);
    c.kg = kg.map(<[u8]>::to_vec);
    c.console_id = u32::from_le_bytes([o[4], o[5], o[6], o[7]]);
    c.bmc_id = u32::from_le_bytes([r1[4], r1[5], r1[6], r1[7]]);
    c.rm.copy_from_slice(&r1[8..24]);
    c.on_rakp2(rakp2)?;
    let keys = c.params().session_keys(password, kg);
    Ok((keys, c.bmc_id, c.console_id))
}
