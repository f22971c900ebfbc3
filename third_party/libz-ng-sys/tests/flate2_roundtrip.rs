//! flate2 (its `zlib-ng` backend, i.e. this shim over zlib-rs) round-trips data in every format
//! pingora uses, and reports corrupt input as errors.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::io::{Read, Write};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Half English-like text (compressible), half pseudo-random bytes (not), deterministic.
fn sample(len: usize) -> Vec<u8> {
    let text = b"The proxy routes each request to the cheapest healthy target. ";
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|i| {
            if (i / 4096) % 2 == 0 {
                text[i % text.len()]
            } else {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            }
        })
        .collect()
}

const SIZES: [usize; 5] = [0, 1, 1000, 64 * 1024 + 3, 1536 * 1024];

#[derive(Clone, Copy, Debug)]
enum Format {
    Deflate,
    Zlib,
    Gzip,
}

fn encode(format: Format, level: Compression, data: &[u8]) -> Vec<u8> {
    match format {
        Format::Deflate => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Format::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Format::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
    }
}

fn decode(format: Format, encoded: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Deflate => flate2::read::DeflateDecoder::new(encoded).read_to_end(&mut out),
        Format::Zlib => flate2::read::ZlibDecoder::new(encoded).read_to_end(&mut out),
        Format::Gzip => flate2::read::GzDecoder::new(encoded).read_to_end(&mut out),
    }?;
    Ok(out)
}

#[test]
fn every_format_round_trips_every_size() {
    for format in [Format::Deflate, Format::Zlib, Format::Gzip] {
        for size in SIZES {
            for level in [Compression::fast(), Compression::default()] {
                let data = sample(size);
                let encoded = encode(format, level, &data);
                let decoded = decode(format, &encoded).unwrap();
                assert!(decoded == data, "{format:?} {size} bytes level {level:?}");
            }
        }
    }
    // The compressible half really is compressed: the engine runs, not a stored-only stub.
    let data = sample(1536 * 1024);
    assert!(encode(Format::Gzip, Compression::default(), &data).len() < data.len() * 3 / 5);
}

/// Compresses with sync flushes in small pieces and decompresses each piece as it arrives, the
/// way pingora compresses a streamed response body.
#[test]
fn sync_flushed_pieces_decode_as_they_arrive() {
    let data = sample(300 * 1024);
    let mut compress = Compress::new_gzip(Compression::default(), 15);
    let mut decompress = Decompress::new_gzip(15);
    let mut decoded = Vec::with_capacity(data.len());
    for (i, piece) in data.chunks(10_000).enumerate() {
        let mut encoded = Vec::with_capacity(piece.len() + 1024);
        let status = compress
            .compress_vec(piece, &mut encoded, FlushCompress::Sync)
            .unwrap();
        assert_eq!(status, Status::Ok, "piece {i}");
        let mut out = Vec::with_capacity(piece.len() + 1024);
        decompress
            .decompress_vec(&encoded, &mut out, FlushDecompress::Sync)
            .unwrap();
        // A sync flush makes everything given so far decodable, without waiting for the end.
        assert_eq!(out, piece, "piece {i}");
        decoded.extend_from_slice(&out);
    }
    let mut tail = Vec::with_capacity(64);
    let status = compress
        .compress_vec(&[], &mut tail, FlushCompress::Finish)
        .unwrap();
    assert_eq!(status, Status::StreamEnd);
    let mut out = Vec::with_capacity(64);
    let status = decompress
        .decompress_vec(&tail, &mut out, FlushDecompress::Finish)
        .unwrap();
    assert_eq!(status, Status::StreamEnd);
    assert!(out.is_empty());
    assert_eq!(decoded, data);
    assert_eq!(compress.total_in(), data.len() as u64);
    assert_eq!(decompress.total_out(), data.len() as u64);
}

#[test]
fn preset_dictionary_is_required_and_accepted() {
    let dictionary = b"cheapest healthy target routes proxy request";
    let data = sample(20_000);

    let mut compress = Compress::new(Compression::default(), true);
    let dict_id = compress.set_dictionary(dictionary).unwrap();
    let mut encoded = Vec::with_capacity(data.len() + 1024);
    let status = compress
        .compress_vec(&data, &mut encoded, FlushCompress::Finish)
        .unwrap();
    assert_eq!(status, Status::StreamEnd);

    let mut decompress = Decompress::new(true);
    let mut out = Vec::with_capacity(data.len());
    let err = decompress
        .decompress_vec(&encoded, &mut out, FlushDecompress::Finish)
        .unwrap_err();
    assert_eq!(err.needs_dictionary(), Some(dict_id));
    let consumed = decompress.total_in() as usize;
    assert_eq!(decompress.set_dictionary(dictionary).unwrap(), dict_id);
    let status = decompress
        .decompress_vec(&encoded[consumed..], &mut out, FlushDecompress::Finish)
        .unwrap();
    assert_eq!(status, Status::StreamEnd);
    assert_eq!(out, data);

    // The wrong dictionary is refused, not silently used.
    let mut decompress = Decompress::new(true);
    let mut out = Vec::with_capacity(data.len());
    let _ = decompress.decompress_vec(&encoded, &mut out, FlushDecompress::Finish);
    assert!(decompress.set_dictionary(b"another dictionary").is_err());
}

/// `set_level` goes through `deflateParams`.
#[test]
fn level_changes_take_effect() {
    let text = b"abcabcabcabc routes routes routes ".repeat(2000);
    let size_at = |level: u32| {
        let mut compress = Compress::new(Compression::default(), false);
        compress.set_level(Compression::new(level)).unwrap();
        let mut encoded = Vec::with_capacity(text.len() + 1024);
        compress
            .compress_vec(&text, &mut encoded, FlushCompress::Finish)
            .unwrap();
        assert_eq!(decode(Format::Deflate, &encoded).unwrap(), text);
        encoded.len()
    };
    assert!(size_at(0) > text.len(), "level 0 stores");
    assert!(size_at(9) < text.len() / 20, "level 9 compresses");

    // Mid-stream, between levels that use the same deflate function (7 to 9 all use the slow,
    // lazy-matching one in zlib-ng and zlib-rs), the change is applied in place and the stream
    // stays valid. (A switch that changes the function, e.g. 1 -> 9, makes `deflateParams` flush
    // into an output buffer flate2 does not pass it: C zlib-ng answers Z_STREAM_ERROR there just
    // as zlib-rs does, and flate2 panics on that code with either.)
    let data = sample(200_000);
    let mut compress = Compress::new(Compression::new(7), true);
    let mut encoded = Vec::with_capacity(data.len() + 4096);
    let (first, second) = data.split_at(100_000);
    compress
        .compress_vec(first, &mut encoded, FlushCompress::None)
        .unwrap();
    assert_eq!(compress.total_in(), first.len() as u64);
    compress.set_level(Compression::best()).unwrap();
    compress
        .compress_vec(second, &mut encoded, FlushCompress::Finish)
        .unwrap();
    assert_eq!(decode(Format::Zlib, &encoded).unwrap(), data);

    // After a reset, any level change applies to the next stream.
    compress.reset();
    compress.set_level(Compression::new(0)).unwrap();
    let mut stored = Vec::with_capacity(text.len() + 1024);
    compress
        .compress_vec(&text, &mut stored, FlushCompress::Finish)
        .unwrap();
    assert!(stored.len() > text.len(), "level 0 stores");
    assert_eq!(decode(Format::Zlib, &stored).unwrap(), text);
}

#[test]
fn reset_streams_are_reusable() {
    let mut compress = Compress::new(Compression::default(), true);
    let mut decompress = Decompress::new(true);
    for round in 0..3 {
        let data = sample(5000 + round * 1000);
        let mut encoded = Vec::with_capacity(data.len() + 1024);
        compress
            .compress_vec(&data, &mut encoded, FlushCompress::Finish)
            .unwrap();
        let mut out = Vec::with_capacity(data.len());
        decompress
            .decompress_vec(&encoded, &mut out, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(out, data, "round {round}");
        compress.reset();
        decompress.reset(true);
    }
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let data = sample(50_000);

    // Not compressed data at all.
    let garbage = b"this is not a compressed stream, just text".repeat(10);
    for format in [Format::Zlib, Format::Gzip] {
        assert!(decode(format, &garbage).is_err(), "{format:?}");
    }
    let mut out = Vec::with_capacity(1024);
    assert!(Decompress::new(false)
        .decompress_vec(&[0xff; 64], &mut out, FlushDecompress::Finish)
        .is_err());

    // A flipped bit inside the body: an invalid code or a checksum mismatch, never a panic.
    for format in [Format::Zlib, Format::Gzip] {
        let mut encoded = encode(format, Compression::default(), &data);
        let middle = encoded.len() / 2;
        encoded[middle] ^= 0x10;
        assert!(decode(format, &encoded).is_err(), "{format:?}");
    }

    // The gzip trailer's CRC no longer matches.
    let mut encoded = encode(Format::Gzip, Compression::default(), &data);
    let crc_at = encoded.len() - 8;
    encoded[crc_at] ^= 0x01;
    assert!(decode(Format::Gzip, &encoded).is_err());

    // Truncated: the stream ends before its end marker.
    let encoded = encode(Format::Gzip, Compression::default(), &data);
    assert!(decode(Format::Gzip, &encoded[..encoded.len() / 2]).is_err());
}
