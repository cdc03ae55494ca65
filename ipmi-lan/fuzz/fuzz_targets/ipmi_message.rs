//! The IPMI LAN message decoder (checksummed request/response framing): no panic, and a
//! decoded request re-encodes to exactly the bytes it came from.
#![no_main]

use ipmi_lan::wire::{IpmiRequest, IpmiResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = IpmiRequest::decode(data) {
        assert_eq!(req.encode(), data);
        let resp = req.response(0, &req.data);
        let back = IpmiResponse::decode(&resp);
        assert!(back.is_ok_and(|r| r.cmd == req.cmd && r.netfn == req.netfn | 1));
    }
    let _ = IpmiResponse::decode(data);
});
