//! Helpers shared by the proto test files: byte specs written as annotated hex.
#![allow(dead_code)]

/// Bytes from an annotated hex spec: whitespace-separated hex bytes, `XX*N` for N copies
/// of byte XX, and `#` starting a comment that runs to the end of the line.
pub fn bytes_of(spec: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in spec.lines() {
        let code = line.split('#').next().unwrap_or("");
        for token in code.split_whitespace() {
            let (byte, count) = match token.split_once('*') {
                Some((byte, count)) => (byte, count.parse::<usize>().expect("repeat count")),
                None => (token, 1),
            };
            let value = u8::from_str_radix(byte, 16).expect("hex byte");
            bytes.extend(std::iter::repeat_n(value, count));
        }
    }
    bytes
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Hex dump, 16 bytes a line with the offset in front.
pub fn dump(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let line: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
        text.push_str(&format!("{:04x}: {}\n", row * 16, line.join(" ")));
    }
    text
}

/// Asserts that `actual` is exactly the bytes of `spec`, showing both dumps if not.
#[track_caller]
pub fn assert_bytes(what: &str, actual: &[u8], spec: &str) {
    let expected = bytes_of(spec);
    assert!(
        actual == expected.as_slice(),
        "{what}: bytes differ\nexpected ({} bytes):\n{}actual ({} bytes):\n{}",
        expected.len(),
        dump(&expected),
        actual.len(),
        dump(actual)
    );
}
