//! The RMCP / ASF / IPMI 1.5 / RMCP+ framing parser on arbitrary datagrams: no panic, and
//! what it returns stays inside the datagram.
#![no_main]

use ipmi_lan::wire::{self, IpmiRequest, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        }
        Ok(Packet::AsfPing { tag }) => {
            let pong = wire::asf_pong(tag);
            assert_eq!(pong[9], tag);
        }
        Err(_) => {}
    }
});
