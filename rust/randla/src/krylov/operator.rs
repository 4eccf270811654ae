//! Operators the solvers apply: dense matrices (faer GEMM), CSR/CSC matrices
//! (native threaded SpMV) and, from the bindings, user callables.

use std::sync::OnceLock;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::vectors::{
    column_dots, diagonal_times_then, epilogue_blocks, sliced_times_then,
    sliced_times_then_transpose, sliced_transpose_times, sparse_times, sparse_times_then,
    sparse_times_then_transpose, sparse_transpose_times, Epilogue, BLOCK,
};
use crate::error::Result;
use crate::parallel::even_blocks;
use crate::parallel::split_rows;
use crate::sparse::{Compressed, CompressedOwned, Diagonals, Index, Sliced, SparseRef};
use crate::Real;

/// A linear operator applied to blocks: `y = A x` with `x` of shape
/// `(ncols, m)` and `y` of shape `(nrows, m)`, any strides.
pub trait Operator<T: Real>: Sync {
    fn shape(&self) -> (usize, usize);
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()>;
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()>;

    /// The matrix itself, for an operator that is a dense matrix (kernels
    /// that block its rows use it).
    fn as_dense(&self) -> Option<MatRef<'_, T>> {
        None
    }

    /// About how many bytes of its own a product reads, for an operator
    /// whose one-column products cost per column no more than its block
    /// products (a sparse matrix): a solver with several right-hand sides
    /// may then run them one at a time, in cache (see
    /// [`super::columns_pay`]). `None` keeps block products: a dense matrix
    /// (a block is one GEMM) or a user callable (one call per block).
    fn stored_bytes(&self) -> Option<usize> {
        None
    }

    /// `y = A x` and the column dot products `x[:, c] . y[:, c]` for row-major
    /// blocks with `m` columns (square `A`); operators that can fuse the two
    /// passes override it.
    fn apply_dot(&self, x: &[T], y: &mut [T], m: usize) -> Result<Vec<f64>> {
        let (rows, cols) = self.shape();
        self.apply(
            MatRef::from_row_major_slice(x, cols, m),
            MatMut::from_row_major_slice_mut(y, rows, m),
        )?;
        Ok(column_dots(x, y, m))
    }

    /// `y = A x`, then `then` on each block of rows of `y` (see [`Epilogue`];
    /// it may rewrite the block), then `z = A^T y` with the rewritten `y`, in
    /// one pass over `A` where the operator can: returns the summed partials
    /// of `then`, or `None` (having computed nothing) where it cannot. All
    /// blocks are row-major with `m` columns.
    fn apply_then_transpose(
        &self,
        _x: &[T],
        _y: &mut [T],
        _z: &mut [T],
        _m: usize,
        _then: &Epilogue<'_, T>,
    ) -> Result<Option<Vec<f64>>> {
        Ok(None)
    }

    /// `y = A x`, then `then` on each block of rows of `y` (see
    /// [`Epilogue`]); returns the summed partials. Operators that can run the
    /// epilogue while a block is still in cache override it.
    fn apply_then(
        &self,
        x: &[T],
        y: &mut [T],
        m: usize,
        then: &Epilogue<'_, T>,
    ) -> Result<Vec<f64>> {
        let (rows, cols) = self.shape();
        self.apply(
            MatRef::from_row_major_slice(x, cols, m),
            MatMut::from_row_major_slice_mut(y, rows, m),
        )?;
        Ok(epilogue_blocks(y, m, then))
    }
}

/// A dense matrix.
pub struct DenseOperator<'a, T>(pub MatRef<'a, T>);

impl<T: Real> Operator<T> for DenseOperator<'_, T> {
    fn shape(&self) -> (usize, usize) {
        (self.0.nrows(), self.0.ncols())
    }
    fn as_dense(&self) -> Option<MatRef<'_, T>> {
        Some(self.0)
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let par = crate::parallel::faer_par();
        crate::parallel::install(|| matmul(y, Accum::Replace, self.0, x, T::ONE, par));
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let par = crate::parallel::faer_par();
        crate::parallel::install(|| matmul(y, Accum::Replace, self.0.transpose(), x, T::ONE, par));
        Ok(())
    }
    /// Row blocks of `A` stay in cache between `t = A_b x`, the epilogue
    /// and `A_b^T t`: the matrix is read once for both products. Eight fixed
    /// chunks of rows sum their partials in order, whatever the thread count.
    fn apply_then_transpose(
        &self,
        x: &[T],
        y: &mut [T],
        z: &mut [T],
        m: usize,
        then: &Epilogue<'_, T>,
    ) -> Result<Option<Vec<f64>>> {
        let a = self.0;
        let (rows, cols) = (a.nrows(), a.ncols());
        let x = MatRef::from_row_major_slice(x, cols, m);
        let chunks = even_blocks(rows, rows.div_ceil(8).max(1));
        let mut pieces = Vec::with_capacity(chunks.len());
        let mut rest = &mut y[..];
        for range in &chunks {
            let (piece, tail) = rest.split_at_mut(range.len() * m);
            pieces.push((range.clone(), piece));
            rest = tail;
        }
        let block = ((1usize << 15) / cols.max(1)).clamp(16, 1024);
        let partials: Vec<(faer::Mat<T>, Vec<f64>)> = crate::parallel::install(|| {
            pieces
                .into_par_iter()
                .map(|(range, piece)| {
                    let mut acc = faer::Mat::<T>::zeros(cols, m);
                    let mut sums = vec![0.0f64; m];
                    for (b, yb) in piece.chunks_mut(block * m).enumerate() {
                        let first = range.start + b * block;
                        let ab = a.get(first..first + yb.len() / m, ..);
                        let t = MatMut::from_row_major_slice_mut(yb, ab.nrows(), m);
                        matmul(t, Accum::Replace, ab, x, T::ONE, Par::Seq);
                        for (s, p) in sums.iter_mut().zip(then(first, yb)) {
                            *s += p;
                        }
                        let t = MatRef::from_row_major_slice(yb, ab.nrows(), m);
                        matmul(
                            acc.as_mut(),
                            Accum::Add,
                            ab.transpose(),
                            t,
                            T::ONE,
                            Par::Seq,
                        );
                    }
                    (acc, sums)
                })
                .collect()
        });
        let mut z = MatMut::from_row_major_slice_mut(z, cols, m);
        z.fill(T::ZERO);
        let mut total = vec![0.0f64; m];
        for (acc, sums) in partials {
            z += &acc;
            for (t, s) in total.iter_mut().zip(sums) {
                *t += s;
            }
        }
        Ok(Some(total))
    }
}

/// A CSR or CSC matrix. Products run over rows of the matrix (or of its
/// transpose), so the other layout is built once, on first need.
pub struct SparseOperator<'a, T, I> {
    a: SparseRef<'a, T, I>,
    other: OnceLock<CompressedOwned<T>>,
    /// The rows by diagonals, where that form pays (see [`Diagonals::from_rows`]).
    diagonals: OnceLock<Option<Diagonals<T>>>,
    /// The rows in sliced form, for one-column products of a matrix that is
    /// not banded (see [`Sliced::from_rows`]).
    sliced: OnceLock<Option<Sliced<T>>>,
}

impl<'a, T: Real, I: Index> SparseOperator<'a, T, I> {
    pub fn new(a: SparseRef<'a, T, I>) -> Self {
        Self {
            a,
            other: OnceLock::new(),
            diagonals: OnceLock::new(),
            sliced: OnceLock::new(),
        }
    }

    /// `A`'s rows in sliced form for one-column products, unless `A` is
    /// banded (then [`Self::diagonals`] serves): built on the first product
    /// that can use it, in about the time of two products.
    fn sliced(&self) -> Option<&Sliced<T>> {
        if self.diagonals().is_some() {
            return None;
        }
        self.sliced
            .get_or_init(|| match &self.a {
                SparseRef::Csr(c) => Sliced::from_rows(c, BLOCK),
                SparseRef::Csc(c) => Sliced::from_rows(&self.other(c), BLOCK),
            })
            .as_ref()
    }

    /// `A` by diagonals when it is banded with few diagonals: built on the
    /// first product that can use it (one scan of the rows, which stops early
    /// for a matrix that does not qualify).
    fn diagonals(&self) -> Option<&Diagonals<T>> {
        self.diagonals
            .get_or_init(|| match &self.a {
                SparseRef::Csr(c) => Diagonals::from_rows(c),
                SparseRef::Csc(c) => Diagonals::from_rows(&self.other(c)),
            })
            .as_ref()
    }

    /// `y = A x` (with the dot products or the epilogue) for row-major
    /// blocks, by diagonals where `A` has that form, else from its rows.
    fn rows_then(
        &self,
        x: &[T],
        y: &mut [T],
        m: usize,
        dot: bool,
        then: Option<&Epilogue<'_, T>>,
    ) -> Option<Vec<f64>> {
        if let Some(d) = self.diagonals() {
            return diagonal_times_then(d, x, y, m, dot, then);
        }
        if m == 1 {
            if let Some(s) = self.sliced() {
                return sliced_times_then(s, x, y, dot, then);
            }
        }
        match &self.a {
            SparseRef::Csr(c) => sparse_times_then(*c, x, y, m, dot, then),
            SparseRef::Csc(c) => sparse_times_then(self.other(c), x, y, m, dot, then),
        }
    }

    fn a_nnz(&self) -> usize {
        match &self.a {
            SparseRef::Csr(c) | SparseRef::Csc(c) => c.nnz(),
        }
    }

    fn other(&self, c: &Compressed<'a, T, I>) -> Compressed<'_, T, usize> {
        self.other.get_or_init(|| c.to_other_major()).view()
    }

    /// `y = L^T x` for the stored lines `L`: scattered from the lines on
    /// row-major blocks (no transposed copy), through the other layout otherwise.
    fn lines_transposed(&self, c: &Compressed<'a, T, I>, x: MatRef<'_, T>, mut y: MatMut<'_, T>) {
        match row_major_slices(&x, &mut y) {
            Some((xs, ys)) => sparse_transpose_times(*c, xs, ys, x.ncols()),
            None => row_products(self.other(c), x, y),
        }
    }
}

/// The row-major slices behind `x` and `y` when both are contiguous row-major blocks.
fn row_major_slices<'x, 'y, T>(
    x: &MatRef<'x, T>,
    y: &mut MatMut<'y, T>,
) -> Option<(&'x [T], &'y mut [T])> {
    let m = x.ncols();
    let row_major =
        |rs: isize, cs: isize, rows: usize| (cs == 1 || m == 1) && (rs == m as isize || rows <= 1);
    if !(row_major(x.row_stride(), x.col_stride(), x.nrows())
        && row_major(y.row_stride(), y.col_stride(), y.nrows()))
    {
        return None;
    }
    // SAFETY: both views are contiguous row-major blocks of nrows * m elements.
    unsafe {
        Some((
            std::slice::from_raw_parts(x.as_ptr(), x.nrows() * m),
            std::slice::from_raw_parts_mut(y.as_ptr_mut(), y.nrows() * m),
        ))
    }
}

/// `y = A x` for `A` given by its rows: the fused block kernel on row-major
/// blocks, the strided one otherwise.
fn rows_times<T: Real, I: Index>(
    rows: Compressed<'_, T, I>,
    x: MatRef<'_, T>,
    mut y: MatMut<'_, T>,
) {
    match row_major_slices(&x, &mut y) {
        Some((xs, ys)) => {
            sparse_times(rows, xs, ys, x.ncols(), false);
        }
        None => row_products(rows, x, y),
    }
}

impl<T: Real, I: Index> Operator<T> for SparseOperator<'_, T, I> {
    fn shape(&self) -> (usize, usize) {
        (self.a.nrows(), self.a.ncols())
    }
    /// By diagonals, the diagonals' values (at the width kept); otherwise the
    /// stored values and indices and the index pointer, as given.
    fn stored_bytes(&self) -> Option<usize> {
        if let Some(d) = self.diagonals() {
            let width = if d.is_narrow() {
                4
            } else {
                std::mem::size_of::<T>()
            };
            return Some(d.offsets().len() * d.nrows() * width);
        }
        let major = match &self.a {
            SparseRef::Csr(c) | SparseRef::Csc(c) => c.major(),
        };
        let (value, index) = (std::mem::size_of::<T>(), std::mem::size_of::<I>());
        Some(self.a_nnz() * (value + index) + (major + 1) * index)
    }
    fn apply(&self, x: MatRef<'_, T>, mut y: MatMut<'_, T>) -> Result<()> {
        let m = x.ncols();
        let fast = self.diagonals().is_some() || (m == 1 && self.sliced().is_some());
        if let (true, Some((xs, ys))) = (fast, row_major_slices(&x, &mut y)) {
            self.rows_then(xs, ys, m, false, None);
            return Ok(());
        }
        match &self.a {
            SparseRef::Csr(c) => rows_times(*c, x, y),
            SparseRef::Csc(c) => self.lines_transposed(c, x, y),
        }
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, mut y: MatMut<'_, T>) -> Result<()> {
        if x.ncols() == 1 {
            if let (Some(s), Some((xs, ys))) = (self.sliced(), row_major_slices(&x, &mut y)) {
                sliced_transpose_times(s, xs, ys);
                return Ok(());
            }
        }
        match &self.a {
            SparseRef::Csr(c) => self.lines_transposed(c, x, y),
            SparseRef::Csc(c) => rows_times(*c, x, y),
        }
        Ok(())
    }
    fn apply_dot(&self, x: &[T], y: &mut [T], m: usize) -> Result<Vec<f64>> {
        let dots = self.rows_then(x, y, m, true, None);
        Ok(dots.expect("asked for the dot products"))
    }
    /// One pass over the rows (of the CSR copy, for CSC input) when the
    /// eight chunk accumulators of `A^T y` cost less than a second pass.
    fn apply_then_transpose(
        &self,
        x: &[T],
        y: &mut [T],
        z: &mut [T],
        m: usize,
        then: &Epilogue<'_, T>,
    ) -> Result<Option<Vec<f64>>> {
        let (_, cols) = self.shape();
        if 8 * cols * m > 2 * self.a_nnz() {
            return Ok(None);
        }
        if m == 1 {
            if let Some(s) = self.sliced() {
                return Ok(Some(sliced_times_then_transpose(s, x, y, z, then)));
            }
        }
        Ok(Some(match &self.a {
            SparseRef::Csr(c) => sparse_times_then_transpose(*c, x, y, z, m, then),
            SparseRef::Csc(c) => sparse_times_then_transpose(self.other(c), x, y, z, m, then),
        }))
    }
    fn apply_then(
        &self,
        x: &[T],
        y: &mut [T],
        m: usize,
        then: &Epilogue<'_, T>,
    ) -> Result<Vec<f64>> {
        let sums = self.rows_then(x, y, m, false, Some(then));
        Ok(sums.expect("an epilogue returns sums"))
    }
}

/// `y = A x` with `A` given by its rows; rows in fixed blocks, in parallel.
pub fn row_products<T: Real, I: Index>(
    a: Compressed<'_, T, I>,
    x: MatRef<'_, T>,
    y: MatMut<'_, T>,
) {
    let m = x.ncols();
    let blocks = even_blocks(a.major(), 4096);
    let row_major =
        m == 1 && x.row_stride() == 1 || x.col_stride() == 1 && x.row_stride() == m as isize;
    // A block of columns in any other layout is copied to row-major once
    // (O(n m)): the products then read each x row contiguously instead of
    // making m strided passes over the matrix (O(nnz m) random reads).
    let copy: Option<Vec<T>> = (!row_major && m > 1).then(|| {
        let mut buf = vec![T::ZERO; x.nrows() * m];
        for c in 0..m {
            for (j, v) in x.col(c).iter().enumerate() {
                buf[j * m + c] = *v;
            }
        }
        buf
    });
    let x = match &copy {
        Some(buf) => MatRef::from_row_major_slice(buf, x.nrows(), m),
        None => x,
    };
    let contiguous_x =
        m == 1 && x.row_stride() == 1 || x.col_stride() == 1 && x.row_stride() == m as isize;
    crate::parallel::install(|| {
        split_rows(y, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(mut piece, rows)| {
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        if contiguous_x {
                            // SAFETY: x holds ncols * m contiguous elements (checked above).
                            let xs =
                                unsafe { std::slice::from_raw_parts(x.as_ptr(), x.nrows() * m) };
                            let mut acc = vec![T::ZERO; m];
                            for (t, i) in rows.clone().enumerate() {
                                if m == 1 {
                                    let mut s = T::ZERO;
                                    for (j, v) in a.line(i) {
                                        s += v * xs[j];
                                    }
                                    piece[(t, 0)] = s;
                                } else {
                                    acc.fill(T::ZERO);
                                    for (j, v) in a.line(i) {
                                        for (s, &xv) in acc.iter_mut().zip(&xs[j * m..(j + 1) * m])
                                        {
                                            *s += v * xv;
                                        }
                                    }
                                    for (c, &s) in acc.iter().enumerate() {
                                        piece[(t, c)] = s;
                                    }
                                }
                            }
                        } else {
                            for (t, i) in rows.clone().enumerate() {
                                for c in 0..m {
                                    let mut s = T::ZERO;
                                    for (j, v) in a.line(i) {
                                        s += v * x[(j, c)];
                                    }
                                    piece[(t, c)] = s;
                                }
                            }
                        }
                    },
                )
            })
    });
}
