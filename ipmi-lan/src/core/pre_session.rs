//! Before a session: the ASF presence ping, and the only two IPMI commands a console may send
//! without a session — Get Channel Authentication Capabilities and Get Channel Cipher Suites
//! — in IPMI 1.5 framing (auth type NONE, what ipmitool sends first) or RMCP+ without
//! integrity. Both are answered inside a session too (`session`), from the same code.
//! Anything else without a session is dropped unanswered.

use std::net::SocketAddr;

use openbmc_vocab::ipmi::{cc, cmd, netfn};

use super::{Action, Core, Random, drop_note, requested_level};
use crate::wire::{self, IpmiRequest};

/// How a pre-session request arrived, so the answer goes back the same way.
#[derive(Clone, Copy)]
pub(super) enum Framing {
    V15,
    V20,
}

impl<R: Random> Core<R> {
    /// ASF presence ping: a pong saying IPMI is supported (no ASF interactions).
    pub(super) fn asf_ping(&self, from: SocketAddr, tag: u8, out: &mut Vec<Action>) {
        out.push(Action::Send {
            to: from,
            data: wire::asf_pong(tag),
        });
    }

    pub(super) fn presession(
        &mut self,
        from: SocketAddr,
        message: &[u8],
        f: Framing,
        out: &mut Vec<Action>,
    ) {
        let Ok(req) = IpmiRequest::decode(message) else {
            return drop_note(out, from, "malformed IPMI message");
        };
        let answer = match (req.netfn, req.cmd) {
            (netfn::APP, cmd::app::GET_CHANNEL_AUTH_CAPABILITIES) => self.auth_caps(&req),
            (netfn::APP, cmd::app::GET_CHANNEL_CIPHER_SUITES) => self.cipher_suites(&req),
            _ => return drop_note(out, from, "command needs a session"),
        };
        let msg = req.response(answer.0, &answer.1);
        let data = match f {
            Framing::V15 => wire::ipmi15_packet(&msg),
            Framing::V20 => wire::rmcpp_plain(wire::PAYLOAD_IPMI, 0, 0, &msg),
        };
        out.push(Action::Send { to: from, data });
    }

    /// Get Channel Authentication Capabilities (§22.13).
    pub(super) fn auth_caps(&self, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let [chan, priv_byte] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        let ch = chan & 0x0F;
        // The requested level's 0h is reserved in this command: refused like 6h–Fh.
        if (ch != 0x0E && ch != self.cfg.channel_number)
            || requested_level(priv_byte & 0x0F).is_none()
        {
            return (cc::INVALID_FIELD_REQUEST, vec![]);
        }
        let v2 = chan & 0x80 != 0;
        let kg = if self.users.kg().is_some() { 0x20 } else { 0 };
        // No IPMI 1.5 authentication type is offered (not even "none"): only RMCP+ logins.
        // Byte 3: non-null user names only (no null or anonymous users).
        (
            cc::SUCCESS,
            vec![
                self.cfg.channel_number,
                if v2 { 0x80 } else { 0x00 },
                0x04 | kg,
                if v2 { 0x02 } else { 0x00 },
                0,
                0,
                0,
                0,
            ],
        )
    }

    /// Get Channel Cipher Suites (§22.15): 16-byte pages of the record list.
    pub(super) fn cipher_suites(&self, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let [chan, payload_type, index] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        let ch = chan & 0x0F;
        if (ch != 0x0E && ch != self.cfg.channel_number) || payload_type & 0x3F != 0 {
            return (cc::INVALID_FIELD_REQUEST, vec![]);
        }
        let mut records = Vec::new();
        if index & 0x80 != 0 {
            // By cipher suite: start-of-record 0xC0, suite ID, then tagged algorithms.
            for s in &self.cfg.cipher_suites {
                let (a, i, c) = s.algorithms();
                records.extend_from_slice(&[0xC0, s.id(), a, 0x40 | i, 0x80 | c]);
            }
        } else {
            // Supported algorithms: each tagged algorithm once.
            for tag in [0x00u8, 0x40, 0x80] {
                let mut seen = Vec::new();
                for s in &self.cfg.cipher_suites {
                    let (a, i, c) = s.algorithms();
                    let alg = match tag {
                        0x00 => a,
                        0x40 => i,
                        _ => c,
                    };
                    if !seen.contains(&alg) {
                        seen.push(alg);
                        records.push(tag | alg);
                    }
                }
            }
        }
        let start = usize::from(index & 0x3F) * 16;
        let page = records.get(start..).unwrap_or(&[]);
        let mut data = vec![self.cfg.channel_number];
        data.extend_from_slice(&page[..page.len().min(16)]);
        (cc::SUCCESS, data)
    }
}
