//! Dense operators: Gaussian (entries N(0, 1/k)) and Rademacher (entries
//! ±1/√k). Entry `S[i, j]` is the draw at position `i n + j` of the key's
//! entry stream. Products generate `S` one tile at a time and hand each tile to
//! a faer GEMM, so `S` is never held in memory; tiles and the summation order
//! depend on the shapes only, never on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::Sketch;
use crate::ensure;
use crate::error::Result;
use crate::parallel::even_blocks;
use crate::parallel::split_rows;
use crate::rng::{tag, Stream};
use crate::sparse::{Compressed, Index, SparseRef};
use crate::Real;

/// Rows of `S` per task.
const ROW_BLOCK: usize = 256;
/// Columns of `S` generated per GEMM call.
const TILE_COLS: usize = 512;
/// Columns of `S` summed per partial product (at least), and at most this many partials.
const MIN_CHUNK: usize = 8192;
const MAX_CHUNKS: usize = 16;
/// Bound on the memory of the partial products (elements).
const PARTIAL_ELEMS: usize = 1 << 26;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    Gaussian,
    Rademacher,
}

#[derive(Debug)]
pub struct DenseSketch {
    distribution: Distribution,
    k: usize,
    n: usize,
    stream: Stream,
}

impl DenseSketch {
    pub fn new(distribution: Distribution, k: usize, n: usize, seed: u64) -> Result<Self> {
        ensure!(k >= 1, "k must be >= 1, got {k}");
        ensure!(n >= 1, "n must be >= 1, got {n}");
        ensure!(
            (k as u128) * (n as u128) < (1u128 << 64),
            "k * n = {k} * {n} exceeds the 64-bit position space"
        );
        Ok(Self {
            distribution,
            k,
            n,
            stream: Stream::new(seed, tag::ENTRIES),
        })
    }

    pub fn name(&self) -> &'static str {
        match self.distribution {
            Distribution::Gaussian => "gaussian",
            Distribution::Rademacher => "rademacher",
        }
    }

    fn scale(&self) -> f64 {
        1.0 / (self.k as f64).sqrt()
    }

    /// Unscaled entries `S[i, j0..j0 + out.len()]` (N(0,1) or ±1); `buf` is scratch of the same length.
    #[inline]
    fn fill_row<T: Real>(&self, i: usize, j0: usize, out: &mut [T], buf: &mut [f64]) {
        let start = (i as u64) * (self.n as u64) + j0 as u64;
        let buf = &mut buf[..out.len()];
        match self.distribution {
            Distribution::Gaussian => self.stream.fill_normal(start, buf),
            Distribution::Rademacher => self.stream.fill_signs(start, 1.0, buf),
        }
        for (o, &b) in out.iter_mut().zip(buf.iter()) {
            *o = T::from_f64(b);
        }
    }

    /// Fills a row-major tile with the unscaled entries of `S[rows, cols]`.
    fn fill_tile<T: Real>(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        tile: &mut [T],
        buf: &mut [f64],
    ) {
        let w = cols.len();
        for (t, i) in rows.enumerate() {
            self.fill_row(i, cols.start, &mut tile[t * w..(t + 1) * w], buf);
        }
    }

    /// Column chunks of `S` summed into separate partial products.
    fn column_chunks(&self, k: usize, d: usize) -> Vec<std::ops::Range<usize>> {
        let by_memory = (PARTIAL_ELEMS / (k * d).max(1)).max(1);
        let count = (self.n / MIN_CHUNK).clamp(1, MAX_CHUNKS).min(by_memory);
        even_blocks(self.n, self.n.div_ceil(count))
    }

    /// Runs `partial(rows, cols) -> kb x d` over a fixed grid and sums the
    /// partials of each row block in a fixed order into `out`.
    fn reduce_partials<T: Real>(
        &self,
        d: usize,
        out: MatMut<'_, T>,
        partial: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>) -> Mat<T> + Sync,
    ) {
        let row_blocks = even_blocks(self.k, ROW_BLOCK);
        let chunks = self.column_chunks(self.k, d);
        let tasks: Vec<(usize, usize)> = (0..row_blocks.len())
            .flat_map(|r| (0..chunks.len()).map(move |c| (r, c)))
            .collect();
        let partials: Vec<Mat<T>> = tasks
            .par_iter()
            .map(|&(r, c)| partial(row_blocks[r].clone(), chunks[c].clone()))
            .collect();
        let scale = T::from_f64(self.scale());
        split_rows(out, &row_blocks)
            .into_par_iter()
            .enumerate()
            .for_each(|(r, mut piece)| {
                let parts = &partials[r * chunks.len()..(r + 1) * chunks.len()];
                for j in 0..d {
                    for i in 0..piece.nrows() {
                        let mut s = parts[0][(i, j)];
                        for p in &parts[1..] {
                            s += p[(i, j)];
                        }
                        piece[(i, j)] = scale * s;
                    }
                }
            });
    }

    fn apply_csr<T: Real, I: Index>(&self, a: Compressed<'_, T, I>, out: MatMut<'_, T>) {
        let d = a.minor();
        self.reduce_partials(d, out, |rows, cols| {
            let kb = rows.len();
            let mut acc = Mat::<T>::zeros(kb, d);
            let mut row = [T::ZERO; TILE_COLS];
            let mut buf = vec![0.0f64; TILE_COLS];
            // Column-major tile: column j of S[rows, tile] is contiguous.
            let mut tile = vec![T::ZERO; kb * TILE_COLS];
            for tc in even_blocks(cols.len(), TILE_COLS) {
                let (j0, w) = (cols.start + tc.start, tc.len());
                for (t, i) in rows.clone().enumerate() {
                    self.fill_row(i, j0, &mut row[..w], &mut buf);
                    for (jj, &v) in row[..w].iter().enumerate() {
                        tile[jj * kb + t] = v;
                    }
                }
                for jj in 0..w {
                    let s_col = &tile[jj * kb..(jj + 1) * kb];
                    for (c, v) in a.line(j0 + jj) {
                        let acc_col = acc.col_as_slice_mut(c);
                        for (x, &s) in acc_col.iter_mut().zip(s_col) {
                            *x += v * s;
                        }
                    }
                }
            }
            acc
        });
    }
}

impl Sketch for DenseSketch {
    fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    fn apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) {
        let d = a.ncols();
        self.reduce_partials(d, out, |rows, cols| {
            let kb = rows.len();
            let mut acc = Mat::<T>::zeros(kb, d);
            let mut tile = vec![T::ZERO; kb * TILE_COLS];
            let mut buf = vec![0.0f64; TILE_COLS];
            for tc in even_blocks(cols.len(), TILE_COLS) {
                let j0 = cols.start + tc.start;
                let w = tc.len();
                let tile = &mut tile[..kb * w];
                self.fill_tile(rows.clone(), j0..j0 + w, tile, &mut buf);
                matmul(
                    acc.as_mut(),
                    Accum::Add,
                    MatRef::from_row_major_slice(tile, kb, w),
                    a.subrows(j0, w),
                    T::ONE,
                    Par::Seq,
                );
            }
            acc
        });
    }

    fn apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>) {
        let k = self.k;
        let width = ((1usize << 20) / k).clamp(64, 1024);
        let blocks = even_blocks(self.n, width);
        let scale = T::from_f64(self.scale());
        split_rows(out, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(piece, cols)| {
                let w = cols.len();
                let mut tile = vec![T::ZERO; k * w];
                let mut buf = vec![0.0f64; w];
                self.fill_tile(0..k, cols.clone(), &mut tile, &mut buf);
                // out[cols, :] = scale * S[:, cols]^T b
                matmul(
                    piece,
                    Accum::Replace,
                    MatRef::from_row_major_slice(&tile, k, w).transpose(),
                    b,
                    scale,
                    Par::Seq,
                );
            });
    }

    fn apply_sparse<T: Real, I: Index>(&self, a: SparseRef<'_, T, I>, out: MatMut<'_, T>) {
        match a {
            SparseRef::Csr(c) => self.apply_csr(c, out),
            SparseRef::Csc(c) => {
                let owned = c.to_other_major();
                self.apply_csr(owned.view(), out)
            }
        }
    }

    fn to_dense<T: Real>(&self, out: MatMut<'_, T>) {
        let rows = even_blocks(self.k, 16);
        let scale = T::from_f64(self.scale());
        split_rows(out, &rows)
            .into_par_iter()
            .zip(rows.par_iter())
            .for_each(|(mut piece, r)| {
                let mut row = vec![T::ZERO; self.n];
                let mut buf = vec![0.0f64; self.n];
                for (t, i) in r.clone().enumerate() {
                    self.fill_row(i, 0, &mut row, &mut buf);
                    super::store_row(&mut piece, t, &row, scale);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_of(op: &DenseSketch) -> Mat<f64> {
        let mut s = Mat::<f64>::zeros(op.k, op.n);
        op.to_dense(s.as_mut());
        s
    }

    fn test_matrix(n: usize, d: usize) -> Mat<f64> {
        let st = Stream::new(99, 7);
        Mat::from_fn(n, d, |i, j| st.normal_at((i * d + j) as u64))
    }

    #[test]
    fn products_match_the_dense_operator() {
        for dist in [Distribution::Gaussian, Distribution::Rademacher] {
            // n spans several tiles and chunks; k several row blocks.
            let (k, n, d) = (300, 20_000, 5);
            let op = DenseSketch::new(dist, k, n, 11).unwrap();
            let s = dense_of(&op);
            let a = test_matrix(n, d);
            let mut sa = Mat::<f64>::zeros(k, d);
            op.apply(a.as_ref(), sa.as_mut());
            let reference = &s * &a;
            assert!((&sa - &reference).norm_max() < 1e-10 * reference.norm_max());

            let b = test_matrix(k, d);
            let mut stb = Mat::<f64>::zeros(n, d);
            op.apply_transpose(b.as_ref(), stb.as_mut());
            let reference = s.transpose() * &b;
            assert!((&stb - &reference).norm_max() < 1e-10 * reference.norm_max());
        }
    }

    #[test]
    fn tiles_are_identical_to_the_dense_operator() {
        let op = DenseSketch::new(Distribution::Gaussian, 7, 1000, 5).unwrap();
        let s = dense_of(&op);
        let mut tile = vec![0.0f64; 3 * 333];
        let mut buf = vec![0.0f64; 333];
        op.fill_tile(2..5, 501..834, &mut tile, &mut buf);
        let scale = op.scale();
        for t in 0..3 {
            for jj in 0..333 {
                assert_eq!(scale * tile[t * 333 + jj], s[(2 + t, 501 + jj)]);
            }
        }
    }

    #[test]
    fn product_is_the_same_on_one_and_two_threads() {
        let op = DenseSketch::new(Distribution::Gaussian, 600, 30_000, 3).unwrap();
        let a = test_matrix(30_000, 3);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = Mat::<f64>::zeros(600, 3);
            pool.install(|| op.apply(a.as_ref(), out.as_mut()));
            out
        };
        let (one, two) = (run(1), run(2));
        assert!(one == two);
    }
}
