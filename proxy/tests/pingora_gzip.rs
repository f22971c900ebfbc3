//! pingora's own gzip response (de)compression works on the flate2 backend we build it with
//! (third_party/libz-ng-sys over zlib-rs, in place of zlib-ng built with CMake).

use pingora::protocols::http::compression::{Algorithm, Encode};

/// An SSE-like body, the kind of response the proxy relays.
fn body() -> Vec<u8> {
    (0..20_000u32)
        .flat_map(|i| {
            format!("data: {{\"index\":{i},\"delta\":\"token {}\"}}\n\n", i % 97).into_bytes()
        })
        .collect()
}

/// Feeds `input` to `encoder` in `piece`-byte chunks, then ends it; the first error wins.
fn run(encoder: &mut dyn Encode, input: &[u8], piece: usize) -> pingora::Result<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in input.chunks(piece) {
        out.extend_from_slice(&encoder.encode(chunk, false)?);
    }
    out.extend_from_slice(&encoder.encode(&[], true)?);
    Ok(out)
}

#[test]
fn pingora_gzip_round_trips_a_streamed_body() {
    let body = body();
    let mut compressor = Algorithm::Gzip.compressor(6).unwrap();
    let compressed = run(compressor.as_mut(), &body, 16 * 1024).unwrap();
    assert_eq!(&compressed[..2], &[0x1f, 0x8b], "a gzip member");
    assert!(
        compressed.len() < body.len() / 4,
        "{} bytes",
        compressed.len()
    );

    let mut decompressor = Algorithm::Gzip.decompressor(true).unwrap();
    let decompressed = run(decompressor.as_mut(), &compressed, 1000).unwrap();
    assert!(decompressed == body, "the body comes back byte for byte");
}

#[test]
fn pingora_gzip_reports_a_corrupt_body_as_an_error() {
    let body = body();
    let mut compressor = Algorithm::Gzip.compressor(6).unwrap();
    let mut compressed = run(compressor.as_mut(), &body, 16 * 1024).unwrap();
    let middle = compressed.len() / 2;
    compressed[middle] ^= 0x10;

    let mut decompressor = Algorithm::Gzip.decompressor(true).unwrap();
    assert!(run(decompressor.as_mut(), &compressed, 1000).is_err());
}
