//! What the allocator has in use and what it holds from the system, for
//! `/metrics` (`certscope_heap_in_use_bytes`, `certscope_heap_held_bytes`):
//! how much of resident memory the heap accounts for, and how much of that is
//! free but kept.
//!
//! The allocator is the binary's choice (the `certscope` binary runs on
//! jemalloc and reports its figures with [`report_heap_with`]); a process that
//! keeps glibc's allocator (the in-process test server) reports glibc's.

use std::sync::OnceLock;

/// (bytes in use, bytes held from the system), or `None` when unknown.
pub type HeapFigures = fn() -> Option<(u64, u64)>;

static FIGURES: OnceLock<HeapFigures> = OnceLock::new();

/// Makes [`heap`] report `figures` (the process's global allocator's); the
/// first call wins.
pub fn report_heap_with(figures: HeapFigures) {
    let _ = FIGURES.set(figures);
}

/// The allocator's figures: (bytes in use, bytes it holds from the system).
pub fn heap() -> Option<(u64, u64)> {
    match FIGURES.get() {
        Some(figures) => figures(),
        None => system_heap(),
    }
}

/// glibc's figures, summed over its arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one call into glibc, explained below
fn system_heap() -> Option<(u64, u64)> {
    // SAFETY: `mallinfo2` takes no arguments and returns a plain struct by
    // value; glibc locks each arena while it sums it.
    let info = unsafe { libc::mallinfo2() };
    let in_use = info.uordblks as u64 + info.hblkhd as u64;
    let held = info.arena as u64 + info.hblkhd as u64;
    Some((in_use, held))
}

/// Not known for other allocators.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn system_heap() -> Option<(u64, u64)> {
    None
}
