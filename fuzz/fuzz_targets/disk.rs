//! What a damaged disk may hand back: a log file of any bytes opens to its
//! intact records or to a clear error, and a record's body of any bytes
//! decodes to operations or to a clear error, never a panic; what decodes
//! encodes back to the same operations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paxos_core::{AcceptorOp, ProposerOp};
use paxos_storage::ops::{BinaryOp, Reader};
use paxos_storage::wal::{read_records, Wal};

fn ops<Op: BinaryOp + PartialEq + std::fmt::Debug>(body: &[u8]) {
    let mut input = Reader::new(body);
    let mut decoded = Vec::new();
    while !input.is_empty() {
        match Op::decode(&mut input) {
            Ok(op) => decoded.push(op),
            Err(_) => return,
        }
    }
    let mut out = Vec::new();
    for op in &decoded {
        op.encode(&mut out).expect("a decoded operation encodes");
    }
    let mut again = Reader::new(&out);
    for op in &decoded {
        assert_eq!(&Op::decode(&mut again).expect("decodes again"), op);
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&which, rest)) = bytes.split_first() else { return };
    match which % 3 {
        0 => ops::<AcceptorOp>(rest),
        1 => ops::<ProposerOp>(rest),
        _ => {
            let dir = tempfile::tempdir().expect("a temporary dir");
            let path = dir.path().join("0000000001.wal");
            std::fs::write(&path, rest).expect("write the log");
            let _ = read_records(&path, 0, 1 << 20);
            if let Ok((_, records)) = Wal::open(&path, false) {
                // What the log kept reads back the same.
                let reopened = Wal::open(&path, false).expect("a log that opened opens again");
                assert_eq!(reopened.1, records);
            }
        }
    }
});
