//! Products of generalized Householder reflections in compact WY form.
//!
//! `Q = H_1 H_2 ... H_k` with `H_i = I - tau_i v_i v_i^T` for any vectors
//! `v_i` and any `tau_i` (LAPACK's reflectors are the case of unit-diagonal
//! trapezoidal `V` and `tau_i = 2 / |v_i|^2`). `Q = I - V T V^T` with `T`
//! upper triangular (larft); applying `Q` to `C` in blocks of
//! [`BLOCK`] reflectors is three GEMMs per block (larfb).

use faer::linalg::matmul::matmul;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::ensure;
use crate::error::Result;
use crate::parallel::even_blocks;
use crate::Real;

/// Reflectors per block in [`apply`].
pub const BLOCK: usize = 256;

/// Below this many reflectors [`wy`] runs the column recurrence directly.
const WY_LEAF: usize = 32;

/// The upper triangular `T` with `H_1 ... H_k = I - V T V^T`.
///
/// Recursive: for `V = [V_1 V_2]`, `T = [[T_1, -T_1 (V_1^T V_2) T_2], [0, T_2]]`;
/// the leaves use `T[:i, i] = -tau_i T[:i, :i] (V[:, :i]^T v_i)`.
pub fn wy<T: Real>(v: MatRef<'_, T>, tau: &[T], par: Par) -> Result<Mat<T>> {
    let k = v.ncols();
    ensure!(
        tau.len() == k,
        "tau has {} entries but V has {k} columns",
        tau.len()
    );
    Ok(wy_blocks(v, tau, par))
}

fn wy_blocks<T: Real>(v: MatRef<'_, T>, tau: &[T], par: Par) -> Mat<T> {
    let k = v.ncols();
    let mut t = Mat::<T>::zeros(k, k);
    if k <= WY_LEAF {
        let mut g = Mat::<T>::zeros(k, k);
        matmul(g.as_mut(), Accum::Replace, v.transpose(), v, T::ONE, par);
        for i in 0..k {
            t[(i, i)] = tau[i];
            // T[:i, i] = -tau_i T[:i, :i] G[:i, i], T[:i, :i] upper triangular.
            for r in 0..i {
                let mut acc = T::ZERO;
                for c in r..i {
                    acc += t[(r, c)] * g[(c, i)];
                }
                t[(r, i)] = -tau[i] * acc;
            }
        }
        return t;
    }
    let h = k / 2;
    let (v1, v2) = v.split_at_col(h);
    let t1 = wy_blocks(v1, &tau[..h], par);
    let t2 = wy_blocks(v2, &tau[h..], par);
    let mut g = Mat::<T>::zeros(h, k - h);
    matmul(g.as_mut(), Accum::Replace, v1.transpose(), v2, T::ONE, par);
    let mut gt = Mat::<T>::zeros(h, k - h);
    matmul(
        gt.as_mut(),
        Accum::Replace,
        g.as_ref(),
        t2.as_ref(),
        T::ONE,
        par,
    );
    let (mut t11, mut t12, _, mut t22) = t.as_mut().split_at_mut(h, h);
    t11.copy_from(&t1);
    t22.copy_from(&t2);
    matmul(
        t12.rb_mut(),
        Accum::Replace,
        t1.as_ref(),
        gt.as_ref(),
        -T::ONE,
        par,
    );
    t
}

/// Which side `Q` multiplies `C` from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// `C <- op(Q) C` (`Side::Left`) or `C <- C op(Q)` (`Side::Right`), with
/// `op(Q) = Q^T` when `transpose`, in blocks of [`BLOCK`] reflectors.
pub fn apply<T: Real>(
    v: MatRef<'_, T>,
    tau: &[T],
    mut c: MatMut<'_, T>,
    side: Side,
    transpose: bool,
    par: Par,
) -> Result<()> {
    let (n, k) = v.shape();
    ensure!(
        tau.len() == k,
        "tau has {} entries but V has {k} columns",
        tau.len()
    );
    let cn = match side {
        Side::Left => c.nrows(),
        Side::Right => c.ncols(),
    };
    ensure!(
        cn == n,
        "C of shape ({}, {}) does not fit reflectors of length {n} on the {side:?} side",
        c.nrows(),
        c.ncols()
    );
    let mut blocks = even_blocks(k, BLOCK);
    // Q C = Q_1 (Q_2 (... Q_B C)): the last block acts first; likewise C Q^T.
    let reverse = (side == Side::Left) != transpose;
    if reverse {
        blocks.reverse();
    }
    for r in blocks {
        let vb = v.subcols(r.start, r.len());
        let tb = wy(vb, &tau[r.clone()], par)?;
        let tb = if transpose {
            tb.transpose().to_owned()
        } else {
            tb
        };
        match side {
            Side::Left => {
                // C -= V (T (V^T C))
                let mut w = Mat::<T>::zeros(r.len(), c.ncols());
                matmul(
                    w.as_mut(),
                    Accum::Replace,
                    vb.transpose(),
                    c.rb(),
                    T::ONE,
                    par,
                );
                let mut tw = Mat::<T>::zeros(r.len(), c.ncols());
                matmul(
                    tw.as_mut(),
                    Accum::Replace,
                    tb.as_ref(),
                    w.as_ref(),
                    T::ONE,
                    par,
                );
                matmul(c.rb_mut(), Accum::Add, vb, tw.as_ref(), -T::ONE, par);
            }
            Side::Right => {
                // C -= ((C V) T) V^T
                let mut w = Mat::<T>::zeros(c.nrows(), r.len());
                matmul(w.as_mut(), Accum::Replace, c.rb(), vb, T::ONE, par);
                let mut wt = Mat::<T>::zeros(c.nrows(), r.len());
                matmul(
                    wt.as_mut(),
                    Accum::Replace,
                    w.as_ref(),
                    tb.as_ref(),
                    T::ONE,
                    par,
                );
                matmul(
                    c.rb_mut(),
                    Accum::Add,
                    wt.as_ref(),
                    vb.transpose(),
                    -T::ONE,
                    par,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::uniform as lcg;

    /// `H_1 ... H_k` multiplied out reflector by reflector.
    fn explicit(v: &Mat<f64>, tau: &[f64]) -> Mat<f64> {
        let n = v.nrows();
        let mut q = Mat::<f64>::identity(n, n);
        for (i, &t) in tau.iter().enumerate() {
            let vi = v.col(i);
            let h = Mat::<f64>::from_fn(n, n, |a, b| (a == b) as u8 as f64 - t * vi[a] * vi[b]);
            q = &q * &h;
        }
        q
    }

    #[test]
    fn wy_and_apply_match_explicit_products() {
        let mut seed = 11;
        let (n, k, cols) = (90, 150, 7); // k > n: more reflectors than rows, several blocks
        let v = Mat::from_fn(n, k, |_, _| lcg(&mut seed));
        let tau: Vec<f64> = (0..k).map(|_| 0.1 * lcg(&mut seed)).collect();
        let q = explicit(&v, &tau);
        let t = wy(v.as_ref(), &tau, Par::Seq).unwrap();
        let wy_q = Mat::<f64>::identity(n, n) - &v * &t * v.transpose();
        assert!((&wy_q - &q).norm_max() < 1e-10 * q.norm_max());
        for i in 0..k {
            for j in 0..i {
                assert_eq!(t[(i, j)], 0.0);
            }
        }
        let c = Mat::from_fn(n, cols, |_, _| lcg(&mut seed));
        for (side, transpose) in [
            (Side::Left, false),
            (Side::Left, true),
            (Side::Right, false),
            (Side::Right, true),
        ] {
            let qq = if transpose {
                q.transpose().to_owned()
            } else {
                q.clone()
            };
            let (mut got, want) = match side {
                Side::Left => (c.clone(), &qq * &c),
                Side::Right => (c.transpose().to_owned(), c.transpose() * &qq),
            };
            apply(v.as_ref(), &tau, got.as_mut(), side, transpose, Par::Seq).unwrap();
            assert!((&got - &want).norm_max() < 1e-10 * want.norm_max());
        }
    }
}
