//! `train::memory::keep_freed_memory`: a step that frees what it allocated gets the same pages back
//! at the next step instead of fresh ones; `release_freed_memory` (the trainer's, at an epoch's end)
//! returns them. A test binary without libtest's harness, so that it runs on the main thread of a
//! fresh process, on glibc's main heap, as the `convtrain` binary does.
//!
//! The step: 40 blocks of 4 MiB (libtorch's 64-byte alignment), one byte written per page, all freed
//! — 160 MiB of free heap top afterwards, more than glibc's default trim threshold ever reaches.

use std::alloc::{alloc, dealloc, Layout};

const BLOCK: usize = 4 << 20;
const BLOCKS: usize = 40;
const PAGE: usize = 4096;
const STEPS: usize = 5;
const WARM_UP: usize = 3;

/// Minor page faults of this process so far (`/proc/self/stat` field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    after_name.split_whitespace().nth(7).expect("minflt field").parse().expect("minflt is a number")
}

/// Faults per step over `STEPS` steps, after `WARM_UP` steps (glibc's free lists take two or three
/// steps to settle on the same blocks).
fn faults_per_step() -> u64 {
    let layout = Layout::from_size_align(BLOCK, 64).unwrap();
    let step = || {
        let blocks: Vec<*mut u8> = (0..BLOCKS)
            .map(|_| {
                // SAFETY: the layout has a non-zero size; the pointer is checked before use.
                let p = unsafe { alloc(layout) };
                assert!(!p.is_null(), "allocation failed");
                for off in (0..BLOCK).step_by(PAGE) {
                    // SAFETY: off < BLOCK, inside the block just allocated.
                    unsafe { p.add(off).write_volatile(1) };
                }
                p
            })
            .collect();
        for p in blocks {
            // SAFETY: allocated above with the same layout, freed once.
            unsafe { dealloc(p, layout) };
        }
    };
    for _ in 0..WARM_UP {
        step();
    }
    let before = minor_faults();
    for _ in 0..STEPS {
        step();
    }
    (minor_faults() - before) / STEPS as u64
}

fn main() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        println!("allocator_policy: glibc only, skipped");
        return;
    }
    let pages = (BLOCK * BLOCKS / PAGE) as u64;
    // glibc's own policy: the free top goes back to the system and every step faults its pages in again.
    let default = faults_per_step();
    assert!(default > pages / 2, "glibc's default policy kept the pages ({default} faults per step of {pages} pages)");
    convtrain::train::memory::keep_freed_memory();
    let kept = faults_per_step();
    assert!(kept < pages / 100, "{kept} page faults per step of {pages} pages with freed memory kept");
    let held = convtrain::train::memory::rss_bytes().expect("VmRSS");
    convtrain::train::memory::release_freed_memory();
    let released = held.saturating_sub(convtrain::train::memory::rss_bytes().expect("VmRSS"));
    assert!(
        released > (BLOCK * BLOCKS) as u64 / 2,
        "release_freed_memory returned {} MiB of the {} MiB a step freed",
        released >> 20,
        (BLOCK * BLOCKS) >> 20
    );
    println!(
        "allocator_policy: {default} page faults per step by default, {kept} with freed memory kept, {} MiB \
         returned by release_freed_memory: ok",
        released >> 20
    );
}
