//! Golub–Kahan bidiagonalization, shared by LSQR and LSMR: `beta_1 u_1 = b - A
//! x0`, `alpha_1 v_1 = A^T u_1`, then `beta u = A v - alpha u` and
//! `alpha v = A^T u - beta v`, column by column on row-major blocks.

use super::vectors::{axpby, column_norms, view, view_mut};
use super::Operator;
use crate::error::Result;
use crate::Real;

pub struct GolubKahan<T> {
    pub u: Vec<T>,
    pub v: Vec<T>,
    rows: usize,
    cols: usize,
    m: usize,
    av: Vec<T>,
    atu: Vec<T>,
}

fn reciprocals<T: Real>(norms: &[f64]) -> Vec<T> {
    norms
        .iter()
        .map(|&s| T::from_f64(if s > 0.0 { 1.0 / s } else { 0.0 }))
        .collect()
}

/// `x[:, c] /= norm[c]` (columns of norm 0 become 0).
fn normalize<T: Real>(x: &mut [T], norms: &[f64]) {
    let zeros = vec![T::ZERO; norms.len()];
    let copy = x.to_vec();
    axpby(&reciprocals::<T>(norms), &copy, &zeros, x);
}

impl<T: Real> GolubKahan<T> {
    /// Starts from `b - A x0`; returns `(beta_1, alpha_1)` per column.
    pub fn start(
        a: &dyn Operator<T>,
        b: &[T],
        x0: Option<&[T]>,
        m: usize,
    ) -> Result<(Self, Vec<f64>, Vec<f64>)> {
        let (rows, cols) = a.shape();
        let mut u = b.to_vec();
        let mut av = vec![T::ZERO; rows * m];
        if let Some(x0) = x0 {
            a.apply(view(x0, cols, m), view_mut(&mut av, rows, m))?;
            axpby(&vec![-T::ONE; m], &av, &vec![T::ONE; m], &mut u);
        }
        let beta = column_norms(&u, m);
        normalize(&mut u, &beta);
        let mut v = vec![T::ZERO; cols * m];
        a.apply_transpose(view(&u, rows, m), view_mut(&mut v, cols, m))?;
        let alpha = column_norms(&v, m);
        normalize(&mut v, &alpha);
        let gk = Self {
            u,
            v,
            rows,
            cols,
            m,
            av,
            atu: vec![T::ZERO; cols * m],
        };
        Ok((gk, beta, alpha))
    }

    /// One step from the previous `alpha`; returns the new `(beta, alpha)`.
    pub fn step(&mut self, a: &dyn Operator<T>, alpha: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let (rows, cols, m) = (self.rows, self.cols, self.m);
        let ones = vec![T::ONE; m];
        a.apply(view(&self.v, cols, m), view_mut(&mut self.av, rows, m))?;
        let neg_alpha: Vec<T> = alpha.iter().map(|&x| T::from_f64(-x)).collect();
        axpby(&ones, &self.av, &neg_alpha, &mut self.u);
        let beta = column_norms(&self.u, m);
        normalize(&mut self.u, &beta);
        a.apply_transpose(view(&self.u, rows, m), view_mut(&mut self.atu, cols, m))?;
        let neg_beta: Vec<T> = beta.iter().map(|&x| T::from_f64(-x)).collect();
        axpby(&ones, &self.atu, &neg_beta, &mut self.v);
        let new_alpha = column_norms(&self.v, m);
        normalize(&mut self.v, &new_alpha);
        Ok((beta, new_alpha))
    }
}
