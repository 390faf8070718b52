//! The memory allocator of tickbridge's binaries, and how it is set up.
//!
//! mimalloc rather than glibc's malloc: a 10,000-record batch makes and
//! frees hundreds of thousands of small blocks next to buffers of several
//! megabytes, and under `tickbridge bench bridge` glibc's bookkeeping for
//! that (`malloc_consolidate`, `unlink_chunk`, `_int_free`, `_int_malloc`)
//! took about 60% of the Lambda process's CPU samples.
//!
//! Built without transparent huge pages (the `no_thp` feature): with them
//! the function's peak RSS after one 7 MB event was about 60 MB instead of
//! 33 MB, and zeroing 2 MB pages was the largest item in its profile.

/// The global allocator; each binary declares it with `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, by its place in `mi_option_t`
/// (the Rust bindings name only some options). The assertion below ties
/// the number to the enum it was read from: a mimalloc with a different
/// option list fails the build instead of setting another option.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const _: () = assert!(libmimalloc_sys::_mi_option_last == 47);

/// Settings for a process that serves one batch after another: memory a
/// batch freed is kept for the next one rather than given back to the
/// system and faulted in (zeroed) again a second later. A Lambda function
/// pays for its configured memory, not for its resident set; the peak is
/// unchanged. `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub fn configure() {
    // SAFETY: sets a default in mimalloc's option table, which the
    // library allows at any time; the index is checked above.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, -1) };
}
