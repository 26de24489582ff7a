//! The binary's allocator: jemalloc, with its background threads purging
//! freed pages after its decay time (10 s), so resident memory follows what
//! is in use.
//!
//! glibc's allocator kept what a thread freed in that thread's arena: through
//! a 16-minute soak (`certscope bench soak`, RELIABILITY.md) the server's heap
//! in use stayed near 180 MiB while its anonymous resident memory grew from
//! 153 to 289 MiB, even with `malloc_trim` every 10 s. jemalloc's size-class
//! slabs fragment less and its decay returns dirty pages on a clock.

/// The allocator every allocation of the process goes through.
#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Hands the allocator's figures to `/metrics` (`certscope_heap_in_use_bytes`,
/// `certscope_heap_held_bytes`).
pub fn install() {
    certscope_query_api::memory::report_heap_with(figures);
}

/// (bytes allocated, bytes in resident pages the allocator maps), as of now.
fn figures() -> Option<(u64, u64)> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // the statistics are a snapshot taken when the epoch advances
    epoch::advance().ok()?;
    let allocated = stats::allocated::read().ok()?;
    let resident = stats::resident::read().ok()?;
    Some((allocated as u64, resident as u64))
}
