//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps what a thread frees in that thread's arena (up to
//! eight arenas per core) and seldom returns it: measured during the soak
//! (`certscope bench soak`, RELIABILITY.md), the server's arenas held 467 MB
//! for 202 MB in use, and resident memory grew with every report and merge
//! although nothing leaked. A background thread asks the allocator to trim
//! every [`TRIM_INTERVAL`], so resident memory follows what is in use.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Starts the trimming thread (for the life of the process).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one call into glibc, explained below
pub fn spawn_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("certscope-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                // SAFETY: `malloc_trim` takes no pointers; it locks each arena
                // in turn and releases its free pages, and glibc makes it safe
                // to call from any thread while others allocate.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the memory trimming thread");
    }
}

/// Other allocators return memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn spawn_trimmer() {}

/// The allocator's figures: (bytes in use, bytes it holds from the system),
/// for `/metrics`; what resident memory the heap accounts for, and how much of
/// it is free but kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one call into glibc, explained below
pub fn heap() -> Option<(u64, u64)> {
    // SAFETY: `mallinfo2` takes no arguments and returns a plain struct by
    // value; glibc locks each arena while it sums it.
    let info = unsafe { libc::mallinfo2() };
    let in_use = info.uordblks as u64 + info.hblkhd as u64;
    let held = info.arena as u64 + info.hblkhd as u64;
    Some((in_use, held))
}

/// Not known for other allocators.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap() -> Option<(u64, u64)> {
    None
}
