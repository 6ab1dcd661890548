//! After warm-up, a collection cycle performs zero heap allocations
//! (counting global allocator, synthetic tree of 100 containers).

use outlyer_agent::metrics::Collector;
use outlyer_testkit::{SyntheticHost, TreeLayout, TreeOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only the measuring thread counts (the test harness has its own threads).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(|c| c.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.load(Ordering::Relaxed) - before)
}

fn steady_state_allocations(layout: TreeLayout) -> (u64, u64) {
    let mut host = SyntheticHost::create(TreeOptions::new(layout, 100)).unwrap();
    let mut c = Collector::new(host.rootfs(), "host-finger");
    c.set_tcp_states(true);
    let t0 = Instant::now();
    for i in 0..100 {
        c.track(&host.container_info(i), t0, 0.0);
    }
    let mut warmup = 0;
    for k in 1..=3u64 {
        host.advance(5.0).unwrap();
        let (_, n) = counted(|| c.collect(t0 + Duration::from_secs(5 * k), 5.0 * k as f64));
        warmup += n;
    }
    let mut steady = 0;
    for k in 4..=32u64 {
        // The spec files are re-read every 30 cycles: cycle 30 is in this range.
        // Rewriting 2,500 files per cycle is slow; counters move on the last cycle.
        if k == 32 {
            host.advance(5.0 * 29.0).unwrap();
        }
        let (_, n) = counted(|| c.collect(t0 + Duration::from_secs(5 * k), 5.0 * k as f64));
        steady += n;
    }
    // The cycles did read something: every container is published with a CPU rate.
    assert_eq!(c.published(), 100);
    let mut samples = 0;
    c.for_each_outlyer_sample(|_, p, v| {
        if p == "base.cpu" {
            assert!(v > 0.0);
            samples += 1;
        }
    });
    assert_eq!(samples, 101, "host + 100 containers");
    (warmup, steady)
}

#[test]
fn zero_heap_allocations_per_cycle_after_warmup() {
    for layout in [TreeLayout::V1Comounted, TreeLayout::V2, TreeLayout::Hybrid] {
        let (warmup, steady) = steady_state_allocations(layout);
        eprintln!("{layout:?}: warm-up allocations {warmup}, steady-state allocations {steady}");
        assert_eq!(steady, 0, "{layout:?}: allocations in steady-state cycles");
    }
}

#[test]
fn the_counter_counts() {
    // Guards the test above against a counter that never fires.
    let (v, n) = counted(|| vec![1u8; 10]);
    assert_eq!(v.len(), 10);
    assert!(n >= 1);
}
