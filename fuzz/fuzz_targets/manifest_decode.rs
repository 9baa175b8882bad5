//! Arbitrary bytes as a MANIFEST file.
//!
//! `Manifest::decode` never panics. When it accepts the bytes, encoding the
//! manifest and decoding that gives the same manifest, and encoding is
//! stable (the second encoding equals the first).
//!
//! The manifest ends with a crc32 of everything before it, so nearly every
//! mutation would stop at the checksum. Each input is therefore also tried
//! as the payload of a manifest with a valid header (taken from an encoded
//! default manifest), its length and a correct crc32, which lets mutations
//! reach the payload parser.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata::Manifest;

/// Magic, version and reserved field: the bytes before the payload length.
const HEADER_LEN: usize = 12;

fn check(bytes: &[u8]) {
    let path = Path::new("fuzz/MANIFEST");
    let Ok(manifest) = Manifest::decode(bytes, path) else {
        return;
    };
    let encoded = manifest.encode();
    let again = Manifest::decode(&encoded, path).expect("an encoded manifest must decode");
    assert_eq!(again, manifest, "manifest changed on encode -> decode");
    assert_eq!(again.encode(), encoded, "encoding is not stable");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let template = Manifest::default().encode();
    let Some(header) = template.get(..HEADER_LEN) else {
        return;
    };
    let Ok(len) = u32::try_from(data.len()) else {
        return;
    };
    let mut framed = header.to_vec();
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(data);
    let crc = crc32fast::hash(&framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    check(&framed);
});
