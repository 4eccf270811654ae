//! Sketching operators: random `k x n` matrices `S` with `E[S^T S] = I`,
//! stored as a distribution and a key, applied without ever forming `S`.
//!
//! One file per operator family:
//! - [`dense`]: Gaussian and Rademacher, generated tile by tile inside GEMMs;
//! - [`srht`]: subsampled randomized Hadamard transform, by a cache-blocked FWHT;
//! - [`sparse`]: CountSketch, sparse sign, very sparse projections and row
//!   sampling, all held as a sparse structure built from the key.
//!
//! Every operator implements [`Sketch`]: `S A`, `S^T B`, `S A` for sparse `A`
//! and `to_dense`. The other products follow from transposed views:
//! `A S^T = (S A^T)^T` and `B S = (S^T B^T)^T`.

pub mod dense;
pub mod sparse;
pub mod srht;

use faer::{MatMut, MatRef};

use crate::ensure;
use crate::error::Result;
use crate::sparse::{Index, SparseRef};
use crate::Real;

pub use dense::{DenseSketch, Distribution};
pub use sparse::{SparseKind, SparseSketch};
pub use srht::Srht;

/// The products every sketching operator provides. `out` may have any strides.
pub trait Sketch {
    /// `(k, n)`.
    fn shape(&self) -> (usize, usize);
    /// `out (k x d) = S a`, `a` of shape `(n, d)`.
    fn apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>);
    /// `out (n x d) = S^T b`, `b` of shape `(k, d)`.
    fn apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>);
    /// `out (k x d) = S a` for a sparse `a` of shape `(n, d)`, in O(nnz) passes where the operator allows.
    fn apply_sparse<T: Real, I: Index>(&self, a: SparseRef<'_, T, I>, out: MatMut<'_, T>);
    /// `out (k x n) = S`.
    fn to_dense<T: Real>(&self, out: MatMut<'_, T>);
}

/// A sketching operator of any family.
#[derive(Debug)]
pub enum SketchOperator {
    Dense(DenseSketch),
    Srht(Srht),
    Sparse(SparseSketch),
}

impl SketchOperator {
    pub fn gaussian(k: usize, n: usize, seed: u64) -> Result<Self> {
        Ok(Self::Dense(DenseSketch::new(
            Distribution::Gaussian,
            k,
            n,
            seed,
        )?))
    }

    pub fn rademacher(k: usize, n: usize, seed: u64) -> Result<Self> {
        Ok(Self::Dense(DenseSketch::new(
            Distribution::Rademacher,
            k,
            n,
            seed,
        )?))
    }

    pub fn srht(k: usize, n: usize, seed: u64) -> Result<Self> {
        Ok(Self::Srht(Srht::new(k, n, seed)?))
    }

    pub fn sparse(kind: SparseKind, k: usize, n: usize, seed: u64) -> Result<Self> {
        Ok(Self::Sparse(SparseSketch::new(kind, k, n, seed)?))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dense(d) => d.name(),
            Self::Srht(_) => "srht",
            Self::Sparse(s) => s.name(),
        }
    }

    /// `out = S a` after checking shapes.
    pub fn try_apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) -> Result<()> {
        let (k, n) = self.shape();
        check_shapes(
            "A",
            (a.nrows(), a.ncols()),
            n,
            (out.nrows(), out.ncols()),
            k,
        )?;
        self.apply(a, out);
        Ok(())
    }

    /// `out = S^T b` after checking shapes.
    pub fn try_apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>) -> Result<()> {
        let (k, n) = self.shape();
        check_shapes(
            "B",
            (b.nrows(), b.ncols()),
            k,
            (out.nrows(), out.ncols()),
            n,
        )?;
        self.apply_transpose(b, out);
        Ok(())
    }

    /// `out = S a` for sparse `a` after checking shapes.
    pub fn try_apply_sparse<T: Real, I: Index>(
        &self,
        a: SparseRef<'_, T, I>,
        out: MatMut<'_, T>,
    ) -> Result<()> {
        let (k, n) = self.shape();
        check_shapes(
            "A",
            (a.nrows(), a.ncols()),
            n,
            (out.nrows(), out.ncols()),
            k,
        )?;
        self.apply_sparse(a, out);
        Ok(())
    }

    /// `out = S` after checking the shape.
    pub fn try_to_dense<T: Real>(&self, out: MatMut<'_, T>) -> Result<()> {
        ensure!(
            (out.nrows(), out.ncols()) == self.shape(),
            "output has shape {:?}, expected {:?}",
            (out.nrows(), out.ncols()),
            self.shape()
        );
        self.to_dense(out);
        Ok(())
    }
}

fn check_shapes(
    name: &str,
    input: (usize, usize),
    inner: usize,
    output: (usize, usize),
    outer: usize,
) -> Result<()> {
    ensure!(
        input.0 == inner,
        "{name} has {} rows but the operator needs {inner}",
        input.0
    );
    ensure!(
        output == (outer, input.1),
        "output has shape {output:?}, expected {:?}",
        (outer, input.1)
    );
    Ok(())
}

macro_rules! dispatch {
    ($self:ident, $op:ident => $e:expr) => {
        match $self {
            SketchOperator::Dense($op) => $e,
            SketchOperator::Srht($op) => $e,
            SketchOperator::Sparse($op) => $e,
        }
    };
}

impl Sketch for SketchOperator {
    fn shape(&self) -> (usize, usize) {
        dispatch!(self, op => op.shape())
    }
    fn apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) {
        crate::parallel::install(|| dispatch!(self, op => op.apply(a, out)))
    }
    fn apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>) {
        crate::parallel::install(|| dispatch!(self, op => op.apply_transpose(b, out)))
    }
    fn apply_sparse<T: Real, I: Index>(&self, a: SparseRef<'_, T, I>, out: MatMut<'_, T>) {
        crate::parallel::install(|| dispatch!(self, op => op.apply_sparse(a, out)))
    }
    fn to_dense<T: Real>(&self, out: MatMut<'_, T>) {
        crate::parallel::install(|| dispatch!(self, op => op.to_dense(out)))
    }
}

/// `acc += alpha * row i of a` (the row as a strided vector).
#[inline(always)]
pub(crate) fn axpy_row<T: Real>(acc: &mut [T], alpha: T, a: MatRef<'_, T>, i: usize) {
    let d = acc.len();
    let cs = a.col_stride();
    let p = a.ptr_at(i, 0);
    if cs == 1 {
        // SAFETY: row i of `a` holds `d` contiguous elements when the column stride is 1.
        let row = unsafe { std::slice::from_raw_parts(p, d) };
        for (x, &y) in acc.iter_mut().zip(row) {
            *x += alpha * y;
        }
    } else {
        for (c, x) in acc.iter_mut().enumerate() {
            // SAFETY: c < ncols, so the offset stays inside `a`.
            *x += alpha * unsafe { *p.offset(c as isize * cs) };
        }
    }
}

/// Writes `scale * src` into row `i` of `out`.
#[inline(always)]
pub(crate) fn store_row<T: Real>(out: &mut MatMut<'_, T>, i: usize, src: &[T], scale: T) {
    for (c, &v) in src.iter().enumerate() {
        out[(i, c)] = scale * v;
    }
}

/// Writes `scale * src` into column `j` of `out`.
#[inline(always)]
pub(crate) fn store_col<T: Real>(out: &mut MatMut<'_, T>, j: usize, src: &[T], scale: T) {
    for (r, &v) in src.iter().enumerate() {
        out[(r, j)] = scale * v;
    }
}
