//! The thread pool every kernel runs on.
//!
//! One rayon pool for the whole library, replaced by [`set_num_threads`].
//! Kernels split work into blocks whose boundaries depend on the problem size
//! only, never on the thread count, so results are bitwise reproducible.

use std::sync::{Arc, RwLock};

use faer::MatMut;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("randla-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::InvalidArgument(format!("cannot start {n} threads: {e}")))
}

fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        *guard = Some(build(n).expect("the default thread pool starts"));
    }
    guard.as_ref().expect("set above").clone()
}

/// Sets the number of threads used by every later kernel.
pub fn set_num_threads(n: usize) -> Result<()> {
    crate::ensure!(n >= 1, "number of threads must be >= 1, got {n}");
    let new = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(new);
    Ok(())
}

/// The number of threads kernels run on.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// The parallelism to hand to faer: the library pool's thread count.
pub fn faer_par() -> faer::Par {
    faer::Par::rayon(num_threads())
}

/// Runs `f` inside the library's pool (rayon calls in `f` use it).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Splits `0..len` into `ceil(len / max_block)` nearly equal blocks: the
/// boundaries depend on `len` and `max_block` only.
pub fn even_blocks(len: usize, max_block: usize) -> Vec<std::ops::Range<usize>> {
    if len == 0 {
        return Vec::new();
    }
    let count = len.div_ceil(max_block.max(1));
    (0..count)
        .map(|b| (b * len / count)..((b + 1) * len / count))
        .collect()
}

/// Splits `m` into the row blocks `ranges` (contiguous, starting at 0).
pub fn split_rows<'a, T>(
    mut m: MatMut<'a, T>,
    ranges: &[std::ops::Range<usize>],
) -> Vec<MatMut<'a, T>> {
    let mut pieces = Vec::with_capacity(ranges.len());
    let mut offset = 0;
    for r in ranges {
        let (top, rest) = m.split_at_row_mut(r.end - offset);
        pieces.push(top);
        m = rest;
        offset = r.end;
    }
    pieces
}

/// Splits `m` into the column blocks `ranges` (contiguous, starting at 0).
pub fn split_cols<'a, T>(
    m: MatMut<'a, T>,
    ranges: &[std::ops::Range<usize>],
) -> Vec<MatMut<'a, T>> {
    split_rows(m.transpose_mut(), ranges)
        .into_iter()
        .map(|p| p.transpose_mut())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_range() {
        for len in [0usize, 1, 7, 800, 1001] {
            let blocks = even_blocks(len, 256);
            let mut next = 0;
            for b in &blocks {
                assert_eq!(b.start, next);
                assert!(b.len() <= 256 && !b.is_empty());
                next = b.end;
            }
            assert_eq!(next, len);
        }
    }
}
