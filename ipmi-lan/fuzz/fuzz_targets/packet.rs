//! The RMCP / ASF / IPMI 1.5 / RMCP+ framing parser on arbitrary datagrams, and the
//! session-setup payload decoders on every RMCP+ payload: no panic, what the parser returns
//! stays inside the datagram, and whatever a setup decoder accepts re-encodes to something it
//! decodes to the same value. The datagram is also handed to a remote console
//! (`ipmi_lan::client`) as if a BMC had sent it: an error, never a panic.
#![no_main]

use ipmi_lan::client::Client;
use ipmi_lan::crypto::CipherSuite;
use ipmi_lan::wire::{
    self, IpmiRequest, OpenSessionRequest, OpenSessionResponse, Packet, Rakp1, Rakp2, Rakp3, Rakp4,
    SetupHeader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Client::new(CipherSuite::Suite17, b"admin", b"fuzz-password", 0x14);
    let _ = c.on_open_session_response(data);
    let _ = c.on_rakp2(data);
    let _ = c.on_rakp4(data);
    let _ = c.on_response(data);
    match wire::parse(data) {
        Ok(Packet::Ipmi15 { message, .. }) => {
            assert!(message.len() <= data.len());
            let _ = IpmiRequest::decode(message);
        }
        Ok(Packet::Rmcpp(p)) => {
            assert!(p.payload.len() + p.trailer.len() + 16 <= data.len());
            for code_len in [12, 16] {
                if let Some((covered, code)) = p.integrity_parts(code_len) {
                    assert_eq!(code.len(), code_len);
                    assert_eq!(covered.len() + code_len, p.session_bytes.len());
                }
            }
            let _ = IpmiRequest::decode(p.payload);
            setup_payloads(p.payload);
        }
        Ok(Packet::AsfPing { tag }) => {
            let pong = wire::asf_pong(tag);
            assert_eq!(pong[9], tag);
        }
        Err(_) => {}
    }
});

fn setup_payloads(p: &[u8]) {
    let _ = SetupHeader::decode(p);
    if let Ok(r) = OpenSessionRequest::decode(p) {
        let _ = r.algorithms();
        assert_eq!(OpenSessionRequest::decode(&r.encode()), Ok(r));
    }
    if let Ok(r) = OpenSessionResponse::decode(p) {
        assert_eq!(OpenSessionResponse::decode(&r.encode()), Ok(r));
    }
    if let Ok(r) = Rakp1::decode(p) {
        if let Ok(name) = r.user_name() {
            assert!(name.len() <= wire::MAX_USER_NAME);
        }
        let bytes = r.encode();
        assert_eq!(Rakp1::decode(&bytes), Ok(r));
    }
    if let Ok(r) = Rakp2::decode(p) {
        let bytes = r.encode();
        assert_eq!(Rakp2::decode(&bytes), Ok(r));
    }
    if let Ok(r) = Rakp3::decode(p) {
        let bytes = r.encode();
        assert_eq!(Rakp3::decode(&bytes), Ok(r));
    }
    if let Ok(r) = Rakp4::decode(p) {
        let bytes = r.encode();
        assert_eq!(Rakp4::decode(&bytes), Ok(r));
    }
}
