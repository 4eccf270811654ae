//! Sparse operators: CountSketch, sparse sign (SJLT/OSNAP), very sparse
//! random projections (Li, Hastie, Church 2006) and row sampling.
//!
//! Each is a sparse `k x n` matrix drawn from the key: column `j` of the
//! hashing operators uses positions derived from `j` only, and sample `t` of
//! row sampling uses position `t`. The structure is built once, on first use,
//! in both compressed layouts (O(nnz(S)) memory, never a dense matrix); every
//! product then costs O(nnz(S) d) for dense inputs and O(nnz(S) nnz(A) / n)
//! for sparse ones. Each output entry is summed in increasing order of the
//! input row, whatever the layout or thread count.

use std::sync::OnceLock;

use faer::{MatMut, MatRef};
use rayon::prelude::*;

use super::srht::sample_distinct;
use super::{axpy_row, store_col, store_row, Sketch};
use crate::ensure;
use crate::error::Result;
use crate::parallel::even_blocks;
use crate::parallel::{split_cols, split_rows};
use crate::rng::{ln_unit, open_unit, tag, Stream};
use crate::sparse::{Compressed, CompressedOwned, Index, SparseRef};
use crate::Real;

/// Bound on the memory of partial sums (elements).
const PARTIAL_ELEMS: usize = 1 << 26;

/// Which sparse operator.
#[derive(Clone, Debug, PartialEq)]
pub enum SparseKind {
    /// One ±1 per column, in a uniformly random row.
    CountSketch,
    /// `nnz_per_col` distinct random rows per column, entries ±1/sqrt(nnz_per_col).
    SparseSign { nnz_per_col: usize },
    /// Each entry nonzero with probability `density`, ±sqrt(1/(k density)).
    VerySparse { density: f64 },
    /// `k` rows of the identity drawn from `probabilities` (uniform if `None`),
    /// row `i` rescaled by `1/sqrt(k p_i)`.
    RowSampling {
        probabilities: Option<Vec<f64>>,
        replace: bool,
    },
}

#[derive(Debug)]
pub struct SparseSketch {
    kind: SparseKind,
    k: usize,
    n: usize,
    seed: u64,
    /// `S` by columns (major = n) and by rows (major = k), each built on first use.
    by_col: OnceLock<CompressedOwned<f64>>,
    by_row: OnceLock<CompressedOwned<f64>>,
}

impl SparseSketch {
    pub fn new(kind: SparseKind, k: usize, n: usize, seed: u64) -> Result<Self> {
        ensure!(k >= 1, "k must be >= 1, got {k}");
        ensure!(n >= 1, "n must be >= 1, got {n}");
        let mut kind = kind;
        match &mut kind {
            SparseKind::CountSketch => {}
            SparseKind::SparseSign { nnz_per_col } => {
                let s = *nnz_per_col;
                ensure!(s >= 1, "nnz_per_col must be >= 1, got {s}");
                ensure!(s <= k, "nnz_per_col = {s} must be <= k = {k}");
            }
            SparseKind::VerySparse { density } => {
                let p = *density;
                ensure!(p > 0.0 && p <= 1.0, "density must be in (0, 1], got {p}");
            }
            SparseKind::RowSampling {
                probabilities,
                replace,
            } => {
                if let Some(p) = probabilities {
                    ensure!(
                        p.len() == n,
                        "p has length {} but the operator has n = {n} columns",
                        p.len()
                    );
                    ensure!(
                        p.iter().all(|&x| x.is_finite() && x >= 0.0),
                        "p must be finite and nonnegative"
                    );
                    let total: f64 = p.iter().sum();
                    ensure!(total > 0.0, "p must have a positive sum");
                    p.iter_mut().for_each(|x| *x /= total);
                    if !*replace {
                        let support = p.iter().filter(|&&x| x > 0.0).count();
                        ensure!(
                            k <= support,
                            "sampling k = {k} rows without replacement needs k <= the number of rows with p > 0 ({support})"
                        );
                    }
                } else if !*replace {
                    ensure!(
                        k <= n,
                        "sampling k = {k} rows without replacement needs k <= n = {n}"
                    );
                }
            }
        }
        Ok(Self {
            kind,
            k,
            n,
            seed,
            by_col: OnceLock::new(),
            by_row: OnceLock::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            SparseKind::CountSketch => "countsketch",
            SparseKind::SparseSign { .. } => "sparse_sign",
            SparseKind::VerySparse { .. } => "sparse_rp",
            SparseKind::RowSampling { .. } => "row_sampling",
        }
    }

    /// The number of stored entries of `S`.
    pub fn nnz(&self) -> usize {
        self.by_col().nnz()
    }

    fn is_row_sampling(&self) -> bool {
        matches!(self.kind, SparseKind::RowSampling { .. })
    }

    fn by_col(&self) -> Compressed<'_, f64, usize> {
        self.by_col
            .get_or_init(|| {
                if self.is_row_sampling() {
                    self.by_row().to_other_major()
                } else {
                    self.hashed_columns()
                }
            })
            .view()
    }

    fn by_row(&self) -> Compressed<'_, f64, usize> {
        self.by_row
            .get_or_init(|| {
                if self.is_row_sampling() {
                    self.sampled_rows()
                } else {
                    self.by_col().to_other_major()
                }
            })
            .view()
    }

    /// Entries of the column-generated operators, columns in parallel.
    fn hashed_columns(&self) -> CompressedOwned<f64> {
        let fixed = match self.kind {
            SparseKind::CountSketch => Some(1),
            SparseKind::SparseSign { nnz_per_col } => Some(nnz_per_col),
            _ => None,
        };
        if let Some(per_col) = fixed {
            // A fixed number of entries per column: fill the arrays in place, in parallel.
            const COLS: usize = 4096;
            let mut indices = vec![0usize; self.n * per_col];
            let mut data = vec![0.0f64; self.n * per_col];
            crate::parallel::install(|| {
                indices
                    .par_chunks_mut(COLS * per_col)
                    .zip(data.par_chunks_mut(COLS * per_col))
                    .enumerate()
                    .for_each(|(c, (rows, vals))| {
                        let columns = rows
                            .chunks_exact_mut(per_col)
                            .zip(vals.chunks_exact_mut(per_col));
                        for (t, (r, v)) in columns.enumerate() {
                            self.fixed_column(c * COLS + t, r, v);
                        }
                    })
            });
            return CompressedOwned {
                major: self.n,
                minor: self.k,
                indptr: (0..=self.n).map(|j| j * per_col).collect(),
                indices,
                data,
            };
        }
        let chunks = even_blocks(self.n, 4096);
        let parts: Vec<(Vec<usize>, Vec<usize>, Vec<f64>)> = crate::parallel::install(|| {
            chunks
                .par_iter()
                .map(|cols| {
                    let mut counts = Vec::with_capacity(cols.len());
                    let mut rows = Vec::new();
                    let mut vals = Vec::new();
                    for j in cols.clone() {
                        let before = rows.len();
                        self.column_entries(j, &mut rows, &mut vals);
                        counts.push(rows.len() - before);
                    }
                    (counts, rows, vals)
                })
                .collect()
        });
        let nnz = parts.iter().map(|p| p.1.len()).sum();
        let mut indptr = Vec::with_capacity(self.n + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        indptr.push(0);
        for (counts, rows, vals) in parts {
            for c in counts {
                indptr.push(indptr.last().copied().unwrap_or(0) + c);
            }
            indices.extend(rows);
            data.extend(vals);
        }
        CompressedOwned {
            major: self.n,
            minor: self.k,
            indptr,
            indices,
            data,
        }
    }

    /// Column `j` of CountSketch or sparse sign, into slices of length nnz_per_col.
    ///
    /// CountSketch: one block (words 0-1 pick the row by multiply-high, bit 0
    /// of word 2 the sign). Sparse sign: Floyd's algorithm, s distinct rows from
    /// s draws; draw t is the 64-bit half t % 2 of block (j, t / 2), its high
    /// bits pick the row, its lowest bit the sign.
    #[inline(always)]
    fn fixed_column(&self, j: usize, rows: &mut [usize], vals: &mut [f64]) {
        let stream = Stream::new(self.seed, tag::ROWS);
        match self.kind {
            SparseKind::CountSketch => {
                let b = stream.block(j as u64, 0);
                let word = ((b[0] as u64) << 32) | b[1] as u64;
                rows[0] = ((word as u128 * self.k as u128) >> 64) as usize;
                vals[0] = if b[2] & 1 == 1 { 1.0 } else { -1.0 };
            }
            SparseKind::SparseSign { nnz_per_col: s } => {
                let value = 1.0 / (s as f64).sqrt();
                let mut block = [0u32; 4];
                for t in 0..s {
                    if t % 2 == 0 {
                        block = stream.block(j as u64, (t / 2) as u32);
                    }
                    let h = 2 * (t % 2);
                    let word = ((block[h] as u64) << 32) | block[h + 1] as u64;
                    let m = self.k - s + t;
                    let r = ((word as u128 * (m as u128 + 1)) >> 64) as usize;
                    rows[t] = if rows[..t].contains(&r) { m } else { r };
                    vals[t] = if word & 1 == 1 { value } else { -value };
                }
            }
            _ => unreachable!("only CountSketch and sparse sign have fixed column counts"),
        }
    }

    /// Column `j` of the very sparse projection: geometric gaps between rows.
    fn column_entries(&self, j: usize, rows: &mut Vec<usize>, vals: &mut Vec<f64>) {
        let row_stream = Stream::new(self.seed, tag::ROWS);
        let k = self.k as u64;
        match self.kind {
            SparseKind::VerySparse { density } => {
                let value = (1.0 / (self.k as f64 * density)).sqrt();
                // Geometric gaps between nonzero rows; draw t of column j is block (j, t).
                let log_q = if density < 1.0 {
                    ln_unit(1.0 - density)
                } else {
                    f64::NEG_INFINITY
                };
                let mut row: i64 = -1;
                for t in 0u32.. {
                    let b = row_stream.block(j as u64, t);
                    let gap = if density < 1.0 {
                        (ln_unit(open_unit(b[0], b[1])) / log_q).floor()
                    } else {
                        0.0
                    };
                    row = row
                        .saturating_add(1)
                        .saturating_add(gap.min(k as f64) as i64);
                    if row >= k as i64 {
                        break;
                    }
                    rows.push(row as usize);
                    vals.push(if b[2] & 1 == 1 { value } else { -value });
                }
            }
            _ => unreachable!("only the very sparse projection has variable columns"),
        }
    }

    /// Row `t` of `S` is the `t`-th sample: one entry.
    fn sampled_rows(&self) -> CompressedOwned<f64> {
        let SparseKind::RowSampling {
            probabilities,
            replace,
        } = &self.kind
        else {
            unreachable!("only row sampling is generated by rows")
        };
        let (k, n) = (self.k, self.n);
        let indices = sample_indices(self.seed, k, n, probabilities.as_deref(), *replace);
        let data = indices
            .iter()
            .map(|&i| {
                let p_i = probabilities.as_ref().map_or(1.0 / n as f64, |p| p[i]);
                1.0 / (k as f64 * p_i).sqrt()
            })
            .collect();
        CompressedOwned {
            major: k,
            minor: n,
            indptr: (0..=k).collect(),
            indices,
            data,
        }
    }

    fn apply_csr<T: Real, I: Index>(&self, a: Compressed<'_, T, I>, out: MatMut<'_, T>) {
        let s = self.by_row();
        let d = a.minor();
        let blocks = even_blocks(self.k, 32);
        split_rows(out, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(mut piece, rows)| {
                let mut acc = vec![T::ZERO; d];
                let mut entries: Vec<(usize, f64)> = Vec::new();
                for (t, i) in rows.clone().enumerate() {
                    acc.fill(T::ZERO);
                    // The input rows are scattered: fetch their bounds 32 rows
                    // ahead and their entries 16 rows ahead (latency, not bandwidth).
                    entries.clear();
                    entries.extend(s.line(i));
                    for (e, &(j, v)) in entries.iter().enumerate() {
                        if let Some(&(ahead, _)) = entries.get(e + 32) {
                            a.prefetch_bounds(ahead);
                        }
                        if let Some(&(ahead, _)) = entries.get(e + 16) {
                            a.prefetch_line(ahead);
                        }
                        let v = T::from_f64(v);
                        for (c, x) in a.line(j) {
                            acc[c] += v * x;
                        }
                    }
                    store_row(&mut piece, t, &acc, T::ONE);
                }
            });
    }

    /// Row-contiguous input read once, in order: each fixed chunk of input
    /// rows scatters into its own partial `k x d` sum, and the partials are
    /// added in chunk order (no dependence on the thread count).
    fn apply_streaming<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) {
        let s = self.by_col();
        let (k, d) = (self.k, a.ncols());
        let by_memory = (PARTIAL_ELEMS / (k * d).max(1)).max(1);
        let count = (self.n / 49_152).clamp(1, 8).min(by_memory);
        let chunks = even_blocks(self.n, self.n.div_ceil(count));
        let partials: Vec<Vec<T>> = chunks
            .par_iter()
            .map(|rows| {
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        let mut acc = vec![T::ZERO; k * d];
                        for j in rows.clone() {
                            for (i, v) in s.line(j) {
                                axpy_row(&mut acc[i * d..(i + 1) * d], T::from_f64(v), a, j);
                            }
                        }
                        acc
                    },
                )
            })
            .collect();
        let blocks = even_blocks(k, 16);
        split_rows(out, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(mut piece, rows)| {
                let mut acc = vec![T::ZERO; d];
                for (t, i) in rows.clone().enumerate() {
                    acc.copy_from_slice(&partials[0][i * d..(i + 1) * d]);
                    for p in &partials[1..] {
                        for (x, &y) in acc.iter_mut().zip(&p[i * d..(i + 1) * d]) {
                            *x += y;
                        }
                    }
                    store_row(&mut piece, t, &acc, T::ONE);
                }
            });
    }

    fn apply_csc<T: Real, I: Index>(&self, a: Compressed<'_, T, I>, out: MatMut<'_, T>) {
        let s = self.by_col();
        let cols = even_blocks(a.major(), 8);
        split_cols(out, &cols)
            .into_par_iter()
            .zip(cols.par_iter())
            .for_each(|(mut piece, cols)| {
                let mut acc = vec![T::ZERO; self.k];
                for (t, c) in cols.clone().enumerate() {
                    acc.fill(T::ZERO);
                    for (j, x) in a.line(c) {
                        for (i, v) in s.line(j) {
                            acc[i] += T::from_f64(v) * x;
                        }
                    }
                    store_col(&mut piece, t, &acc, T::ONE);
                }
            });
    }
}

impl Sketch for SparseSketch {
    fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    fn apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) {
        let d = a.ncols();
        if a.row_stride() == 1 && a.col_stride() != 1 && d > 1 {
            // Column-contiguous input: scatter each column into a k-vector.
            let s = self.by_col();
            let cols = even_blocks(d, 4);
            split_cols(out, &cols)
                .into_par_iter()
                .zip(cols.par_iter())
                .for_each(|(mut piece, cols)| {
                    let mut acc = vec![T::ZERO; self.k];
                    for (t, c) in cols.clone().enumerate() {
                        acc.fill(T::ZERO);
                        // SAFETY: the row stride is 1, so column c holds n contiguous elements.
                        let col = unsafe { std::slice::from_raw_parts(a.ptr_at(0, c), self.n) };
                        for (j, &x) in col.iter().enumerate() {
                            for (i, v) in s.line(j) {
                                acc[i] += T::from_f64(v) * x;
                            }
                        }
                        store_col(&mut piece, t, &acc, T::ONE);
                    }
                });
        } else if a.col_stride() == 1 && !self.is_row_sampling() {
            self.apply_streaming(a, out);
        } else {
            // Gather the input rows each output row needs (row sampling reads only k rows).
            let s = self.by_row();
            let blocks = even_blocks(self.k, 16);
            split_rows(out, &blocks)
                .into_par_iter()
                .zip(blocks.par_iter())
                .for_each(|(mut piece, rows)| {
                    let mut acc = vec![T::ZERO; d];
                    for (t, i) in rows.clone().enumerate() {
                        acc.fill(T::ZERO);
                        for (j, v) in s.line(i) {
                            axpy_row(&mut acc, T::from_f64(v), a, j);
                        }
                        store_row(&mut piece, t, &acc, T::ONE);
                    }
                });
        }
    }

    fn apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>) {
        let s = self.by_col();
        let d = b.ncols();
        let blocks = even_blocks(self.n, 256);
        split_rows(out, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(mut piece, rows)| {
                let mut acc = vec![T::ZERO; d];
                for (t, j) in rows.clone().enumerate() {
                    acc.fill(T::ZERO);
                    for (i, v) in s.line(j) {
                        axpy_row(&mut acc, T::from_f64(v), b, i);
                    }
                    store_row(&mut piece, t, &acc, T::ONE);
                }
            });
    }

    fn apply_sparse<T: Real, I: Index>(&self, a: SparseRef<'_, T, I>, out: MatMut<'_, T>) {
        match a {
            SparseRef::Csr(c) => self.apply_csr(c, out),
            SparseRef::Csc(c) => self.apply_csc(c, out),
        }
    }

    fn to_dense<T: Real>(&self, mut out: MatMut<'_, T>) {
        out.fill(T::ZERO);
        let s = self.by_row();
        for i in 0..self.k {
            for (j, v) in s.line(i) {
                out[(i, j)] += T::from_f64(v);
            }
        }
    }
}

/// The `k` row indices of a row-sampling draw from `0..n` keyed by `seed`:
/// with replacement, i.i.d. with probabilities proportional to
/// `probabilities` (uniform if `None`); without, `k` distinct rows
/// (Efraimidis–Spirakis keys for weighted draws), in increasing order. Each
/// draw is a pure function of (seed, position).
pub fn sample_indices(
    seed: u64,
    k: usize,
    n: usize,
    probabilities: Option<&[f64]>,
    replace: bool,
) -> Vec<usize> {
    let stream = Stream::new(seed, tag::SAMPLE);
    match (probabilities, replace) {
        (None, true) => (0..k)
            .map(|t| stream.below_at(t as u64, n as u64) as usize)
            .collect(),
        (None, false) => sample_distinct(stream, n, k),
        (Some(p), true) => {
            let mut cumulative = Vec::with_capacity(n);
            let mut total = 0.0;
            for &x in p {
                total += x;
                cumulative.push(total);
            }
            (0..k)
                .map(|t| {
                    let u = stream.uniform_at(t as u64) * total;
                    // The first row whose cumulative mass exceeds u (rows with p = 0 are skipped).
                    cumulative.partition_point(|&c| c <= u).min(n - 1)
                })
                .collect()
        }
        (Some(p), false) => {
            // Efraimidis–Spirakis: the k largest keys ln(u_i) / p_i.
            let mut keyed: Vec<(f64, usize)> = p
                .iter()
                .enumerate()
                .filter(|(_, &x)| x > 0.0)
                .map(|(i, &x)| (ln_unit(stream.uniform_at(i as u64)) / x, i))
                .collect();
            keyed.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut chosen: Vec<usize> = keyed[..k].iter().map(|&(_, i)| i).collect();
            chosen.sort_unstable();
            chosen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn kinds() -> Vec<SparseKind> {
        vec![
            SparseKind::CountSketch,
            SparseKind::SparseSign { nnz_per_col: 3 },
            SparseKind::VerySparse { density: 0.2 },
            SparseKind::VerySparse { density: 1.0 },
            SparseKind::RowSampling {
                probabilities: None,
                replace: true,
            },
            SparseKind::RowSampling {
                probabilities: None,
                replace: false,
            },
            SparseKind::RowSampling {
                probabilities: Some((0..500).map(|i| (i % 7) as f64).collect()),
                replace: true,
            },
            SparseKind::RowSampling {
                probabilities: Some((0..500).map(|i| 1.0 + (i % 3) as f64).collect()),
                replace: false,
            },
        ]
    }

    #[test]
    fn every_layout_matches_the_dense_operator() {
        let (k, n, d) = (40, 500, 6);
        let st = Stream::new(4, 0);
        let a = Mat::from_fn(n, d, |i, j| st.normal_at((i * d + j) as u64));
        // Sparse copy of a with about a third of the entries.
        let mut indptr = vec![0usize];
        let (mut idx, mut val) = (vec![], vec![]);
        for i in 0..n {
            for j in 0..d {
                if (i + 2 * j) % 3 == 0 {
                    idx.push(j);
                    val.push(a[(i, j)]);
                }
            }
            indptr.push(idx.len());
        }
        let csr = Compressed::new(n, d, &indptr, &idx, &val).unwrap();
        let a_sparse = Mat::from_fn(
            n,
            d,
            |i, j| if (i + 2 * j) % 3 == 0 { a[(i, j)] } else { 0.0 },
        );
        for kind in kinds() {
            let op = SparseSketch::new(kind.clone(), k, n, 21).unwrap();
            let mut s = Mat::<f64>::zeros(k, n);
            op.to_dense(s.as_mut());
            let expect = &s * &a;
            let mut got = Mat::<f64>::zeros(k, d);
            op.apply(a.as_ref(), got.as_mut());
            assert!((&got - &expect).norm_max() < 1e-12, "{kind:?} C-order");
            let a_f = a.to_owned(); // faer Mat is column-major: the column path
            op.apply(a_f.as_ref(), got.as_mut());
            assert!((&got - &expect).norm_max() < 1e-12, "{kind:?} F-order");
            let expect_sparse = &s * &a_sparse;
            op.apply_sparse(SparseRef::Csr(csr), got.as_mut());
            assert!((&got - &expect_sparse).norm_max() < 1e-12, "{kind:?} CSR");
            let csc = csr.to_other_major();
            op.apply_sparse(SparseRef::Csc(csc.view()), got.as_mut());
            assert!((&got - &expect_sparse).norm_max() < 1e-12, "{kind:?} CSC");
            let b = Mat::from_fn(k, d, |i, j| st.normal_at((10_000 + i * d + j) as u64));
            let mut stb = Mat::<f64>::zeros(n, d);
            op.apply_transpose(b.as_ref(), stb.as_mut());
            assert!(
                (&stb - s.transpose() * &b).norm_max() < 1e-12,
                "{kind:?} transpose"
            );
        }
    }

    #[test]
    fn structure_has_the_documented_shape() {
        let op = SparseSketch::new(SparseKind::SparseSign { nnz_per_col: 8 }, 50, 1000, 1).unwrap();
        for j in 0..1000 {
            let mut rows: Vec<usize> = op.by_col().line(j).map(|(i, _)| i).collect();
            assert_eq!(rows.len(), 8);
            rows.sort_unstable();
            rows.dedup();
            assert_eq!(rows.len(), 8, "rows of a column are distinct");
        }
        let op = SparseSketch::new(SparseKind::VerySparse { density: 0.1 }, 200, 2000, 1).unwrap();
        let frac = op.nnz() as f64 / (200.0 * 2000.0);
        assert!((frac - 0.1).abs() < 0.005, "density {frac}");
    }

    #[test]
    fn rejects_impossible_parameters() {
        assert!(SparseSketch::new(SparseKind::SparseSign { nnz_per_col: 9 }, 8, 10, 0).is_err());
        assert!(SparseSketch::new(SparseKind::VerySparse { density: 0.0 }, 8, 10, 0).is_err());
        let no_replace = SparseKind::RowSampling {
            probabilities: None,
            replace: false,
        };
        assert!(SparseSketch::new(no_replace, 11, 10, 0).is_err());
        let negative = SparseKind::RowSampling {
            probabilities: Some(vec![1.0, -1.0]),
            replace: true,
        };
        assert!(SparseSketch::new(negative, 1, 2, 0).is_err());
    }
}
