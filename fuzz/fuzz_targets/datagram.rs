//! Any bytes a datagram may carry: the receiver's checks never panic, the
//! fast decoder reads exactly what serde_json reads, and whatever decodes
//! encodes back to the same envelopes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paxos_proto::auth::{open, KeyRing};
use paxos_proto::{decode, decode_bundle, decode_bundle_without_fast_path, encode};

fuzz_target!(|bytes: &[u8]| {
    let peers = KeyRing::from_key(&[0x11; 32]);
    let clients = KeyRing::from_key(&[0x22; 32]);
    // The trailer's parse and check, with keys and without.
    let _ = open(bytes, Some(&peers), Some(&clients));
    let body = match open(bytes, None, None) {
        Ok((body, _)) => body,
        Err(_) => bytes,
    };

    let fast = decode_bundle(body);
    let slow = decode_bundle_without_fast_path(body);
    assert_eq!(fast, slow, "the fast path and serde_json disagree on {:?}", String::from_utf8_lossy(body));
    let _ = decode(body);

    if let Ok(envs) = fast {
        for env in envs {
            let mut out = Vec::new();
            encode(&env, &mut out).expect("a decoded envelope encodes");
            assert_eq!(decode(&out).as_ref(), Ok(&env), "{:?}", String::from_utf8_lossy(&out));
        }
    }
});
