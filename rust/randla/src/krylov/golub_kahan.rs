//! Golub–Kahan bidiagonalization, shared by LSQR and LSMR: `beta_1 u_1 = b - A
//! x0`, `alpha_1 v_1 = A^T u_1`, then `beta u = A v - alpha u` and
//! `alpha v = A^T u - beta v`, column by column on row-major blocks.

use super::vectors::{axpby, axpby_dots, axpby_dots_in_block, column_norms, scale, view, view_mut};
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
    scale(x, &reciprocals::<T>(norms));
}

fn sqrt_all(squares: Vec<f64>) -> Vec<f64> {
    squares.into_iter().map(f64::sqrt).collect()
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
        let mut av = vec![T::ZERO; rows * m];
        let mut v = vec![T::ZERO; cols * m];
        // u = b - A x0 and A^T u in one pass where the operator offers it.
        let (ones, minus) = (vec![T::ONE; m], vec![-T::ONE; m]);
        let residual = |first: usize, yb: &mut [T]| -> Vec<f64> {
            axpby_dots_in_block(&ones, &b[first * m..first * m + yb.len()], &minus, yb)
        };
        let fused = match x0 {
            Some(x0) => a.apply_then_transpose(x0, &mut av, &mut v, m, &residual)?,
            None => None,
        };
        let (u, beta) = match fused {
            Some(sums) => {
                let beta = sqrt_all(sums);
                let mut u = std::mem::replace(&mut av, vec![T::ZERO; rows * m]);
                normalize(&mut u, &beta);
                normalize(&mut v, &beta);
                (u, beta)
            }
            None => {
                let mut u = b.to_vec();
                if let Some(x0) = x0 {
                    a.apply(view(x0, cols, m), view_mut(&mut av, rows, m))?;
                    axpby(&minus, &av, &ones, &mut u);
                }
                let beta = column_norms(&u, m);
                normalize(&mut u, &beta);
                a.apply_transpose(view(&u, rows, m), view_mut(&mut v, cols, m))?;
                (u, beta)
            }
        };
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
    /// Where the operator offers it, `A v - alpha u` and `A^T` of it come
    /// from one pass over `A` (each block of rows finished while in cache),
    /// and `A^T u` is that product over `beta`: exact, not a recurrence.
    pub fn step(&mut self, a: &dyn Operator<T>, alpha: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let (rows, cols, m) = (self.rows, self.cols, self.m);
        let neg_alpha: Vec<T> = alpha.iter().map(|&x| T::from_f64(-x)).collect();
        let u = &self.u;
        // av = A v - alpha u and its column norms.
        let ones = vec![T::ONE; m];
        let subtract = |first: usize, yb: &mut [T]| -> Vec<f64> {
            axpby_dots_in_block(&neg_alpha, &u[first * m..first * m + yb.len()], &ones, yb)
        };
        let fused = a.apply_then_transpose(&self.v, &mut self.av, &mut self.atu, m, &subtract)?;
        let was_fused = fused.is_some();
        let (beta, atu_scale) = match fused {
            Some(sums) => {
                let beta = sqrt_all(sums);
                let scale = reciprocals::<T>(&beta);
                (beta, scale)
            }
            None => {
                let beta = sqrt_all(a.apply_then(&self.v, &mut self.av, m, &subtract)?);
                (beta, vec![T::ONE; m])
            }
        };
        std::mem::swap(&mut self.u, &mut self.av);
        normalize(&mut self.u, &beta);
        if !was_fused {
            a.apply_transpose(view(&self.u, rows, m), view_mut(&mut self.atu, cols, m))?;
        }
        let neg_beta: Vec<T> = beta.iter().map(|&x| T::from_f64(-x)).collect();
        let new_alpha = sqrt_all(axpby_dots(&atu_scale, &self.atu, &neg_beta, &mut self.v));
        normalize(&mut self.v, &new_alpha);
        Ok((beta, new_alpha))
    }
}
