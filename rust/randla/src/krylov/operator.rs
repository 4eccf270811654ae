//! Operators the solvers apply: dense matrices (faer GEMM), CSR/CSC matrices
//! (native threaded SpMV) and, from the bindings, user callables.

use std::sync::OnceLock;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::Result;
use crate::parallel::even_blocks;
use crate::parallel::split_rows;
use crate::sparse::{Compressed, CompressedOwned, Index, SparseRef};
use crate::Real;

/// A linear operator applied to blocks: `y = A x` with `x` of shape
/// `(ncols, m)` and `y` of shape `(nrows, m)`, any strides.
pub trait Operator<T: Real>: Sync {
    fn shape(&self) -> (usize, usize);
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()>;
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()>;
}

/// A dense matrix.
pub struct DenseOperator<'a, T>(pub MatRef<'a, T>);

impl<T: Real> Operator<T> for DenseOperator<'_, T> {
    fn shape(&self) -> (usize, usize) {
        (self.0.nrows(), self.0.ncols())
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let par = Par::rayon(crate::parallel::num_threads());
        crate::parallel::install(|| matmul(y, Accum::Replace, self.0, x, T::ONE, par));
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let par = Par::rayon(crate::parallel::num_threads());
        crate::parallel::install(|| matmul(y, Accum::Replace, self.0.transpose(), x, T::ONE, par));
        Ok(())
    }
}

/// A CSR or CSC matrix. Products run over rows of the matrix (or of its
/// transpose), so the other layout is built once, on first need.
pub struct SparseOperator<'a, T, I> {
    a: SparseRef<'a, T, I>,
    other: OnceLock<CompressedOwned<T>>,
}

impl<'a, T: Real, I: Index> SparseOperator<'a, T, I> {
    pub fn new(a: SparseRef<'a, T, I>) -> Self {
        Self {
            a,
            other: OnceLock::new(),
        }
    }

    fn other(&self, c: &Compressed<'a, T, I>) -> Compressed<'_, T, usize> {
        self.other.get_or_init(|| c.to_other_major()).view()
    }
}

impl<T: Real, I: Index> Operator<T> for SparseOperator<'_, T, I> {
    fn shape(&self) -> (usize, usize) {
        (self.a.nrows(), self.a.ncols())
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        match &self.a {
            SparseRef::Csr(c) => row_products(*c, x, y),
            SparseRef::Csc(c) => row_products(self.other(c), x, y),
        }
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        match &self.a {
            SparseRef::Csr(c) => row_products(self.other(c), x, y),
            SparseRef::Csc(c) => row_products(*c, x, y),
        }
        Ok(())
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
    let contiguous_x =
        m == 1 && x.row_stride() == 1 || x.col_stride() == 1 && x.row_stride() == m as isize;
    crate::parallel::install(|| {
        split_rows(y, &blocks)
            .into_par_iter()
            .zip(blocks.par_iter())
            .for_each(|(mut piece, rows)| {
                if contiguous_x {
                    // SAFETY: x holds ncols * m contiguous elements (checked above).
                    let xs = unsafe { std::slice::from_raw_parts(x.as_ptr(), x.nrows() * m) };
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
                                for (s, &xv) in acc.iter_mut().zip(&xs[j * m..(j + 1) * m]) {
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
            })
    });
}
