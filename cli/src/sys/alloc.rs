//! The command's allocator: dlmalloc behind a lock of its own.
//!
//! dlmalloc's own global allocator takes a `pthread_mutex` around every
//! call: about 2500 lock and unlock pairs in a bundle's start, each two
//! calls into the C library. Here one atomic flag guards the heap, taken
//! and released inline. The command is single-threaded nearly all the
//! time (its helper threads are short and rare), so the lock is almost
//! never contended; a waiter spins briefly, then yields its CPU.
//!
//! Every fork the command makes is from a single thread
//! (`sys::process`), so the lock is never held across a fork.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// dlmalloc and the flag that guards it.
pub struct Allocator {
    locked: AtomicBool,
    heap: UnsafeCell<dlmalloc::Dlmalloc>,
}

// SAFETY: the heap is only reached through `with`, which holds the flag,
// so no two threads use it at once.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An allocator with an empty heap.
    pub const fn new() -> Allocator {
        Allocator {
            locked: AtomicBool::new(false),
            heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()),
        }
    }

    /// Runs `f` on the heap, alone.
    #[inline]
    fn with<T>(&self, f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> T) -> T {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                // (sched_yield allocates nothing.)
                std::thread::yield_now();
            }
        }
        // SAFETY: the flag is held: this is the only reference to the heap
        // until it is released below.
        let r = f(unsafe { &mut *self.heap.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

impl Default for Allocator {
    fn default() -> Allocator {
        Allocator::new()
    }
}

// SAFETY: each method hands dlmalloc the pointer and layout the caller
// gives, as GlobalAlloc's contract passes them on, under the lock.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        self.with(|h| unsafe { h.malloc(layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: see the impl.
        self.with(|h| unsafe { h.free(ptr, layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        self.with(|h| unsafe { h.calloc(layout.size(), layout.align()) })
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        self.with(|h| unsafe { h.realloc(ptr, layout.size(), layout.align(), new_size) })
    }
}

#[cfg(test)]
mod tests {
    /// Threads allocating, writing, checking and freeing at once through
    /// the command's allocator (the test binary's global allocator too):
    /// no block is handed out twice, none is corrupted.
    #[test]
    fn threads_share_the_heap_without_overlap() {
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut held: Vec<Vec<u8>> = Vec::new();
                    for i in 0..20_000usize {
                        let len = 1 + (i * 7 + usize::from(t) * 13) % 3000;
                        held.push(vec![t; len]);
                        if held.len() > 64 {
                            let v = held.swap_remove(i % held.len());
                            assert!(v.iter().all(|&b| b == t), "thread {t}: a block changed");
                        }
                    }
                    held.iter().all(|v| v.iter().all(|&b| b == t))
                })
            })
            .collect();
        for h in threads {
            assert!(h.join().unwrap(), "a block changed under another thread");
        }
    }
}
