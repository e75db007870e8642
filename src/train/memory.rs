//! How much memory a CPU run may still take, and a ceiling that turns running out of it into an
//! error. Linux lets allocations succeed far beyond physical memory and has the OOM killer end the
//! process once the pages are touched, which leaves no message (and may end other processes). With
//! the address space capped (`RLIMIT_AS`) at its size now plus the memory that is free, libtorch's
//! allocator fails instead, and [`catch_torch`](crate::error::catch_torch) reports it in one
//! paragraph: what was being allocated, how big, what to lower. CUDA allocations are not affected
//! (CUDA reports its own out-of-memory errors); install the ceiling for CPU runs only.

/// Reserved but unused address space the ceiling leaves room for, per core: a thread stack and a
/// malloc arena for each of libtorch's intra-op threads.
const SLACK_PER_CORE: u64 = 128 << 20;
/// Reserved address space the ceiling leaves room for in any case (loader and signal threads,
/// libraries mapped later).
const SLACK: u64 = 1 << 30;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A `/proc/meminfo` value in bytes.
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// What the process's memory cgroup still allows (v2, else v1), if it has a limit.
fn cgroup_room() -> Option<u64> {
    let own = read("/proc/self/cgroup")
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_default();
    let v2 = [format!("/sys/fs/cgroup{own}"), "/sys/fs/cgroup".to_string()].into_iter().find_map(|d| {
        let max: u64 = read(&format!("{d}/memory.max"))?.trim().parse().ok()?;
        let current: u64 = read(&format!("{d}/memory.current"))?.trim().parse().ok()?;
        Some(max.saturating_sub(current))
    });
    v2.or_else(|| {
        let limit: u64 = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?.trim().parse().ok()?;
        let usage: u64 = read("/sys/fs/cgroup/memory/memory.usage_in_bytes")?.trim().parse().ok()?;
        (limit < 1 << 60).then(|| limit.saturating_sub(usage))
    })
}

/// Bytes of address space the process maps now.
fn mapped_bytes() -> Option<u64> {
    let pages: u64 = read("/proc/self/statm")?.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

fn address_space_limit() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) };
    lim
}

/// Memory this process may still allocate: free memory and swap, within its cgroup's limit and its
/// address-space limit. `None` where the system does not say (not Linux).
pub fn available_bytes() -> Option<u64> {
    let info = read("/proc/meminfo")?;
    let mut free = meminfo(&info, "MemAvailable:")? + meminfo(&info, "SwapFree:").unwrap_or(0);
    if let Some(room) = cgroup_room() {
        free = free.min(room);
    }
    let lim = address_space_limit();
    if lim.rlim_cur != libc::RLIM_INFINITY {
        free = free.min(lim.rlim_cur.saturating_sub(mapped_bytes()?));
    }
    Some(free)
}

/// Resident memory of this process now (`VmRSS`); `None` where the system does not say (not Linux).
pub fn rss_bytes() -> Option<u64> {
    meminfo(&read("/proc/self/status")?, "VmRSS:")
}

/// Peak resident memory of this process (`VmHWM`), since it started or since the last
/// [`reset_peak_rss`]. `None` where the system does not say (not Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    meminfo(&read("/proc/self/status")?, "VmHWM:")
}

/// Restarts [`peak_rss_bytes`] from the current resident memory (`clear_refs` 5, Linux 4.0 and later),
/// so that the peak of one part of a run can be read; `false` where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// glibc's largest `M_MMAP_THRESHOLD` (`HEAP_MAX_SIZE / 2` on 64-bit): blocks up to this size come
/// from the heap.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory at the top of a heap that glibc keeps for the next allocations instead of returning.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Keeps freed memory in the process for the next training step (glibc only; a no-op elsewhere, and
/// where the environment sets either threshold itself: `GLIBC_TUNABLES`' `glibc.malloc.mmap_threshold`
/// or `glibc.malloc.trim_threshold`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`).
///
/// libtorch's CPU allocator is glibc's `malloc`. By default glibc returns the free top of its heap to
/// the system once it exceeds a trim threshold (at most 64 MiB, adjusted as blocks are freed), and a
/// training step frees nearly everything it allocated: the next step gets fresh pages, one page fault
/// (and a page of zeroing by the kernel) per 4 KiB. In a WRN-16-4 step at batch 16 that was ~900,000
/// faults and 1.8 s of system time per 15 s of `convtrain bench` (PyTorch's process, timed
/// alternately in the same 15 s: 160,000 and 0.3 s). Fixed thresholds — blocks up to 32 MiB from the
/// heap, up to 1 GiB of free heap top kept — make a step reuse the pages of the step before it.
/// Resident memory then stays at its peak between steps, until [`release_freed_memory`] gives the
/// kept memory back; allocations above 32 MiB are still mapped and unmapped one by one, as by default.
pub fn keep_freed_memory() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let user_set = ["glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold"].iter().any(|t| tunables.contains(t))
        || ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"].iter().any(|v| std::env::var_os(v).is_some());
    if user_set {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of malloc's parameters; called at start-up, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns the free memory [`keep_freed_memory`] kept to the system (glibc's `malloc_trim`: the free
/// heap top, and the free pages inside the heaps); the trainer calls it at each epoch's end, after
/// validation, so that the resident memory recorded there (`rss_bytes`) is what the run holds, not
/// what the allocator kept for the next step. The next steps fault their pages in once more: one
/// step's worth of faults per epoch. Measured on the 10-epoch Tiny CNN run of docs/PERFORMANCE.md
/// ("Memory over a long run"): without it the recorded RSS rose in steps of ~30 MiB to a plateau
/// 150 MiB above glibc's default policy, at a different epoch in each run (+8 % from epoch 2 to 10
/// in one run, +0.1 % in another).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it takes malloc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// While alive, the address space is capped as the module says; dropping it restores the limit.
#[derive(Debug)]
pub struct MemoryCeiling {
    previous: libc::rlimit,
}

impl MemoryCeiling {
    /// Caps the address space at what it maps now plus the available memory (plus room for thread
    /// stacks and arenas); never raises a limit already in force. `None` where the sizes are unknown.
    pub fn install() -> Option<MemoryCeiling> {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let ceiling = mapped_bytes()? + available_bytes()? + SLACK + SLACK_PER_CORE * cores;
        let previous = address_space_limit();
        if previous.rlim_cur != libc::RLIM_INFINITY && previous.rlim_cur <= ceiling {
            return None;
        }
        let capped = libc::rlimit { rlim_cur: ceiling as libc::rlim_t, rlim_max: previous.rlim_max };
        // SAFETY: setrlimit reads the struct we pass; lowering a soft limit needs no privilege.
        (unsafe { libc::setrlimit(libc::RLIMIT_AS, &capped) } == 0).then_some(MemoryCeiling { previous })
    }
}

impl Drop for MemoryCeiling {
    fn drop(&mut self) {
        // SAFETY: as in `install`; the previous soft limit is at most the unchanged hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &self.previous) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_values_are_bytes() {
        let text = "MemTotal:       24576000 kB\nMemAvailable:    1000 kB\n";
        assert_eq!(meminfo(text, "MemAvailable:"), Some(1_024_000));
        assert_eq!(meminfo(text, "SwapFree:"), None);
        assert!(available_bytes().unwrap() > 0);
    }

    #[test]
    fn peak_rss_counts_touched_pages_and_can_be_restarted() {
        let touched = vec![1u8; 64 << 20];
        assert!(peak_rss_bytes().unwrap() >= 64 << 20, "{:?}", peak_rss_bytes());
        drop(std::hint::black_box(touched));
        assert!(reset_peak_rss());
        assert!(peak_rss_bytes().unwrap() > 0);
    }
}
