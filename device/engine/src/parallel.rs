//! Work spread over threads, results kept in input order: each worker claims the next index.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `work(0..n)` on `threads` workers (at least one); the results in index order.
pub fn map_in_order<T: Send>(n: usize, threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = work(i);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    // A slot stays empty only if a worker panicked while holding the lock (the scope has
    // re-raised that panic by now), so every slot is filled here.
    slots.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order_whatever_the_threads() {
        for threads in [0, 1, 3, 16] {
            assert_eq!(super::map_in_order(10, threads, |i| i * i), (0..10).map(|i| i * i).collect::<Vec<_>>());
        }
        assert!(super::map_in_order(0, 2, |i| i).is_empty());
    }
}
