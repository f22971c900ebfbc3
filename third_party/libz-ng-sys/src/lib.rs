//! A stand-in for crates.io's `libz-ng-sys`: the part of its API that flate2 uses, on zlib-rs.
//!
//! # Why this crate exists
//!
//! pingora-core 0.9.1 depends on `flate2` with the `zlib-ng` feature, and the real
//! `libz-ng-sys` compiles zlib-ng's C sources with CMake. That made `cmake` (and a C compiler)
//! a requirement for building the proxy on a fresh machine that only has the Rust toolchain.
//! The workspace manifest replaces `libz-ng-sys` with this crate through `[patch.crates-io]`
//! (same name and version as the locked one). flate2 keeps compiling its C-backend code path
//! against the names below, and every call lands in `libz-rs-sys`, the C API of the pure-Rust
//! zlib-rs (the same engine flate2's own `zlib-rs` feature uses). Nothing is compiled from C.
//!
//! Drop this crate and its `[patch.crates-io]` entry once pingora offers a switch to flate2's
//! `zlib-rs` backend (pingora issue 704 asks for one).
//!
//! # What it provides
//!
//! Exactly what flate2 1.1's `src/ffi/c.rs` and `src/mem.rs` use from `libz_ng_sys` when the
//! `zlib-ng` feature is on: the `z_stream` type with its field and pointer types, the `Z_*`
//! flush modes, return codes, method and strategy constants, and `deflateInit2_`, `deflate`,
//! `deflateReset`, `deflateEnd`, `deflateParams`, `deflateSetDictionary`, `inflateInit2_`,
//! `inflate`, `inflateReset2`, `inflateEnd`, `inflateSetDictionary` and `zlibVersion`. Anything
//! else is left out on purpose: if a newer flate2 starts using more of the API, the build fails
//! here instead of silently misbehaving.
//!
//! # Layout
//!
//! [`z_stream`] keeps libz-ng-sys's field names and its bare `zalloc`/`zfree` function pointers
//! (flate2 assigns its allocator functions to them directly), while `libz_rs_sys::z_stream`
//! declares them as `Option<fn>`. The other field types follow libz-rs-sys (unsigned long
//! counters and checksum, as in zlib's own header), so the two structs have the same layout,
//! which the constant assertions below check field by field; flate2 only writes literals to
//! those fields and reads `adler` through an `as u32` cast, so it compiles against either.
//! Each function therefore passes the caller's pointer on unchanged, only retyped.

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::{c_char, c_int};
use core::mem::{align_of, offset_of, size_of};

use libz_rs_sys as rs;

pub use rs::{alloc_func, free_func, internal_state, uInt, uLong, voidpf, Bytef};
pub use rs::{
    Z_BLOCK, Z_BUF_ERROR, Z_DATA_ERROR, Z_DEFAULT_STRATEGY, Z_DEFLATED, Z_FINISH, Z_FULL_FLUSH,
    Z_MEM_ERROR, Z_NEED_DICT, Z_NO_FLUSH, Z_OK, Z_PARTIAL_FLUSH, Z_STREAM_END, Z_STREAM_ERROR,
    Z_SYNC_FLUSH,
};

/// zlib's stream state, shaped as libz-ng-sys declares it (see the crate docs on layout).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct z_stream {
    pub next_in: *mut Bytef,
    pub avail_in: uInt,
    pub total_in: uLong,
    pub next_out: *mut Bytef,
    pub avail_out: uInt,
    pub total_out: uLong,
    pub msg: *mut c_char,
    pub state: *mut internal_state,
    pub zalloc: alloc_func,
    pub zfree: free_func,
    pub opaque: voidpf,
    pub data_type: c_int,
    pub adler: uLong,
    pub reserved: uLong,
}

/// Pointer to a [`z_stream`], as zlib's prototypes take it.
pub type z_streamp = *mut z_stream;

/// Compile-time proof that [`z_stream`] and `libz_rs_sys::z_stream` have the same layout.
const _: () = {
    macro_rules! same_offset {
        ($($field:ident),+) => {
            $(assert!(offset_of!(z_stream, $field) == offset_of!(rs::z_stream, $field));)+
        };
    }
    same_offset!(
        next_in, avail_in, total_in, next_out, avail_out, total_out, msg, state, zalloc, zfree,
        opaque, data_type, adler, reserved
    );
    assert!(size_of::<z_stream>() == size_of::<rs::z_stream>());
    assert!(align_of::<z_stream>() == align_of::<rs::z_stream>());
    assert!(size_of::<alloc_func>() == size_of::<Option<alloc_func>>());
    assert!(size_of::<free_func>() == size_of::<Option<free_func>>());
};

/// Retypes a stream pointer for libz-rs-sys.
///
/// SAFETY (of every use of the result): the two structs have the same size, alignment and field
/// offsets (asserted above), and each field has the same type except `next_in` (`*mut` here,
/// `*const` there: the same representation) and `zalloc`/`zfree`, which are `fn` here and
/// `Option<fn>` there. Rust guarantees that `Option<fn>` has the layout of `fn`
/// with `None` as the null pointer, so every value of ours is a valid value of theirs (always
/// `Some`). The reverse direction holds too: zlib-rs only ever writes `Some` to those fields (it
/// fills in a default allocator when it finds `None`), so it never leaves a null function pointer
/// in a `z_stream` of ours.
fn rs_stream(strm: z_streamp) -> *mut rs::z_stream {
    strm.cast()
}

/// The zlib version string this implementation is compatible with (zlib-rs reports its own).
pub extern "C" fn zlibVersion() -> *const c_char {
    rs::zlibVersion()
}

/// Initializes `strm` for compression.
///
/// # Safety
/// As zlib's `deflateInit2_`: `strm` is null or points to a `z_stream` whose `zalloc`, `zfree`
/// and `opaque` are set; `version` is null or a C string.
#[allow(clippy::too_many_arguments)] // zlib's own signature
pub unsafe extern "C" fn deflateInit2_(
    strm: z_streamp,
    level: c_int,
    method: c_int,
    windowBits: c_int,
    memLevel: c_int,
    strategy: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    // `stream_size` is the caller's `size_of::<z_stream>()`, equal to libz-rs-sys's (asserted
    // above), so its own version check applies unchanged.
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe {
        rs::deflateInit2_(
            rs_stream(strm),
            level,
            method,
            windowBits,
            memLevel,
            strategy,
            version,
            stream_size,
        )
    }
}

/// Compresses as much as the buffers allow.
///
/// # Safety
/// As zlib's `deflate`: `strm` is null or was initialized by [`deflateInit2_`], and its
/// `next_in`/`next_out` are valid for `avail_in`/`avail_out` bytes.
pub unsafe extern "C" fn deflate(strm: z_streamp, flush: c_int) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::deflate(rs_stream(strm), flush) }
}

/// Resets a compression stream to its freshly initialized state.
///
/// # Safety
/// As zlib's `deflateReset`: `strm` is null or was initialized by [`deflateInit2_`].
pub unsafe extern "C" fn deflateReset(strm: z_streamp) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::deflateReset(rs_stream(strm)) }
}

/// Frees a compression stream's state.
///
/// # Safety
/// As zlib's `deflateEnd`: `strm` is null or was initialized by [`deflateInit2_`].
pub unsafe extern "C" fn deflateEnd(strm: z_streamp) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::deflateEnd(rs_stream(strm)) }
}

/// Changes the compression level and strategy mid-stream.
///
/// # Safety
/// As zlib's `deflateParams`: `strm` is null or was initialized by [`deflateInit2_`], with its
/// output buffer set as for [`deflate`].
pub unsafe extern "C" fn deflateParams(strm: z_streamp, level: c_int, strategy: c_int) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::deflateParams(rs_stream(strm), level, strategy) }
}

/// Sets the preset dictionary of a compression stream.
///
/// # Safety
/// As zlib's `deflateSetDictionary`: `strm` is null or was initialized by [`deflateInit2_`], and
/// `dictionary` is valid for `dictLength` bytes.
pub unsafe extern "C" fn deflateSetDictionary(
    strm: z_streamp,
    dictionary: *const Bytef,
    dictLength: uInt,
) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::deflateSetDictionary(rs_stream(strm), dictionary, dictLength) }
}

/// Initializes `strm` for decompression.
///
/// # Safety
/// As zlib's `inflateInit2_`: `strm` is null or points to a `z_stream` whose `zalloc`, `zfree`
/// and `opaque` are set; `version` is null or a C string.
pub unsafe extern "C" fn inflateInit2_(
    strm: z_streamp,
    windowBits: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::inflateInit2_(rs_stream(strm), windowBits, version, stream_size) }
}

/// Decompresses as much as the buffers allow.
///
/// # Safety
/// As zlib's `inflate`: `strm` is null or was initialized by [`inflateInit2_`], and its
/// `next_in`/`next_out` are valid for `avail_in`/`avail_out` bytes.
pub unsafe extern "C" fn inflate(strm: z_streamp, flush: c_int) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::inflate(rs_stream(strm), flush) }
}

/// Resets a decompression stream, possibly with another window size or header kind.
///
/// # Safety
/// As zlib's `inflateReset2`: `strm` is null or was initialized by [`inflateInit2_`].
pub unsafe extern "C" fn inflateReset2(strm: z_streamp, windowBits: c_int) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::inflateReset2(rs_stream(strm), windowBits) }
}

/// Frees a decompression stream's state.
///
/// # Safety
/// As zlib's `inflateEnd`: `strm` is null or was initialized by [`inflateInit2_`].
pub unsafe extern "C" fn inflateEnd(strm: z_streamp) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::inflateEnd(rs_stream(strm)) }
}

/// Sets the preset dictionary of a decompression stream (after it asked for one).
///
/// # Safety
/// As zlib's `inflateSetDictionary`: `strm` is null or was initialized by [`inflateInit2_`], and
/// `dictionary` is valid for `dictLength` bytes.
pub unsafe extern "C" fn inflateSetDictionary(
    strm: z_streamp,
    dictionary: *const Bytef,
    dictLength: uInt,
) -> c_int {
    // SAFETY: the caller's contract is libz-rs-sys's; the pointer is retyped per `rs_stream`.
    unsafe { rs::inflateSetDictionary(rs_stream(strm), dictionary, dictLength) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    #[test]
    fn version_is_zlib_compatible() {
        // SAFETY: zlib-rs returns a static NUL-terminated string.
        let version = unsafe { core::ffi::CStr::from_ptr(zlibVersion()) };
        let version = version.to_str().unwrap();
        assert!(version.starts_with("1."), "{version}");
    }

    #[test]
    fn null_streams_are_rejected_not_dereferenced() {
        let null: z_streamp = ptr::null_mut();
        // SAFETY: every function accepts a null stream and answers Z_STREAM_ERROR.
        unsafe {
            assert_eq!(deflate(null, Z_NO_FLUSH), Z_STREAM_ERROR);
            assert_eq!(deflateReset(null), Z_STREAM_ERROR);
            assert_eq!(deflateEnd(null), Z_STREAM_ERROR);
            assert_eq!(deflateParams(null, 6, Z_DEFAULT_STRATEGY), Z_STREAM_ERROR);
            assert_eq!(deflateSetDictionary(null, ptr::null(), 0), Z_STREAM_ERROR);
            assert_eq!(inflate(null, Z_NO_FLUSH), Z_STREAM_ERROR);
            assert_eq!(inflateReset2(null, 15), Z_STREAM_ERROR);
            assert_eq!(inflateEnd(null), Z_STREAM_ERROR);
            assert_eq!(inflateSetDictionary(null, ptr::null(), 0), Z_STREAM_ERROR);
            let size = size_of::<z_stream>() as c_int;
            assert_eq!(
                deflateInit2_(null, 6, Z_DEFLATED, 15, 8, 0, zlibVersion(), size),
                Z_STREAM_ERROR
            );
            assert_eq!(inflateInit2_(null, 15, zlibVersion(), size), Z_STREAM_ERROR);
        }
    }
}
