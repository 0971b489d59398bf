//! The fuzzer's seed frames (`fuzz/seeds/frame_decode/`) are valid frames of this protocol
//! version, so that fuzzing starts from inputs that reach every layer of the decoder.

use quorder_proto::codec::{access_batch, access_operation, decode_batch_reply, decode_reply};
use quorder_proto::frame::decode_frame;
use quorder_proto::validate::validate_operation;
use quorder_proto::FrameKind;
use std::path::Path;

#[test]
fn every_seed_is_a_valid_frame() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/frame_decode");
    let mut kinds_seen = Vec::new();
    for entry in std::fs::read_dir(&directory).expect("seed directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        let (frame, used) = decode_frame(&bytes).unwrap_or_else(|error| {
            panic!("{}: {error}", path.display());
        });
        assert_eq!(used, bytes.len(), "{}: one whole frame", path.display());
        match frame.header.kind {
            FrameKind::Request => {
                let operation = access_operation(&frame.body).expect("operation");
                assert_eq!(validate_operation(operation), Ok(()), "{}", path.display());
            }
            FrameKind::BatchRequest => {
                for operation in access_batch(&frame.body).expect("batch").operations.iter() {
                    assert_eq!(validate_operation(operation), Ok(()), "{}", path.display());
                }
            }
            FrameKind::Reply => {
                decode_reply(&frame.body).expect("reply");
            }
            FrameKind::BatchReply => {
                decode_batch_reply(&frame.body).expect("batch reply");
            }
            other => panic!("{}: seed of unexpected kind {other:?}", path.display()),
        }
        kinds_seen.push(frame.header.kind as u8);
    }
    kinds_seen.sort_unstable();
    kinds_seen.dedup();
    assert_eq!(kinds_seen, [1, 2, 3, 4], "a seed of every frame kind");
}
