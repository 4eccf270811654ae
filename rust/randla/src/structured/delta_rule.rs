//! The DeltaNet / DeltaProduct recurrence, chunkwise with the WY/UT transform.
//!
//! Per (batch, head), a state `S` (`d_k x d_v`) evolves over sub-steps `j`:
//! `S_j = gamma_j (I - beta_j k_j k_j^T) S_{j-1} + beta_j k_j v_j^T`, where
//! `gamma_j = exp(g_t)` on the first of token `t`'s `n_h` sub-steps and 1
//! otherwise; token `t`'s output `o_t = S^T q_t` is read after its last
//! sub-step. Writing `S_j = gamma_j S_{j-1} + k_j u_j^T` with
//! `u_j = beta_j (v_j - gamma_j S_{j-1}^T k_j)` and `Gamma_j` the cumulative
//! gate inside a chunk, the chunk's new values `U` solve the unit lower
//! triangular system
//!
//! `u_j + beta_j sum_{i<j} (Gamma_j / Gamma_i) (k_j . k_i) u_i = beta_j (v_j - Gamma_j S_0^T k_j)`,
//!
//! the UT form of the product of the chunk's reflections (ALGORITHMS.md).
//! Then `S_j = Gamma_j S_0 + sum_{i<=j} (Gamma_j / Gamma_i) k_i u_i^T`, so the
//! outputs and the next state are GEMMs: `O = diag(Gamma) Q S_0 + (Q K^T
//! masked and decayed) U` and `S_L = Gamma_L S_0 + K^T diag(Gamma_L / Gamma) U`.
//! Gate ratios are formed from differences of logarithms, never from a
//! running product, so long chunks with strong decay neither under- nor
//! overflow.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::ensure;
use crate::error::Result;
use crate::Real;

/// One (batch, head) sequence: `q` (`T x d_k`), `k` (`T n_h x d_k`),
/// `v` (`T n_h x d_v`), `beta` (`T n_h`), optional `gate` (`T`).
pub struct Sequence<'a, T> {
    pub q: MatRef<'a, T>,
    pub k: MatRef<'a, T>,
    pub v: MatRef<'a, T>,
    pub beta: &'a [T],
    pub gate: Option<&'a [T]>,
    pub n_h: usize,
}

/// Runs the recurrence over `seq` in chunks of `chunk` tokens: `state`
/// holds the initial state on entry and the final one on return; `out`
/// (`T x d_v`) receives the outputs.
pub fn run<T: Real>(
    seq: &Sequence<'_, T>,
    mut state: MatMut<'_, T>,
    mut out: MatMut<'_, T>,
    chunk: usize,
    par: Par,
) -> Result<()> {
    let Sequence {
        q,
        k,
        v,
        beta,
        gate,
        n_h,
    } = *seq;
    let (tokens, dk) = q.shape();
    let dv = v.ncols();
    ensure!(chunk >= 1 && n_h >= 1, "chunk_size and n_h must be >= 1");
    ensure!(
        k.nrows() == tokens * n_h && k.ncols() == dk,
        "k has shape ({}, {}), expected ({}, {dk})",
        k.nrows(),
        k.ncols(),
        tokens * n_h
    );
    ensure!(
        v.nrows() == tokens * n_h && beta.len() == tokens * n_h,
        "v and beta need {} sub-steps, got {} and {}",
        tokens * n_h,
        v.nrows(),
        beta.len()
    );
    ensure!(
        gate.is_none_or(|g| g.len() == tokens),
        "gate needs {tokens} entries"
    );
    ensure!(
        state.shape() == (dk, dv) && out.shape() == (tokens, dv),
        "state ({}, {}) or output ({}, {}) has the wrong shape",
        state.nrows(),
        state.ncols(),
        out.nrows(),
        out.ncols()
    );
    let mut t0 = 0;
    while t0 < tokens {
        let ct = chunk.min(tokens - t0);
        let (j0, l) = (t0 * n_h, ct * n_h);
        let (kc, vc, qc) = (k.subrows(j0, l), v.subrows(j0, l), q.subrows(t0, ct));
        let bc = &beta[j0..j0 + l];
        // Log of the cumulative gate at every sub-step of the chunk.
        let mut lg = vec![0.0f64; l];
        if let Some(g) = gate {
            let mut acc = 0.0;
            for tok in 0..ct {
                acc += g[t0 + tok].to_f64();
                lg[tok * n_h..(tok + 1) * n_h].fill(acc);
            }
        }
        let decay = |j: usize, i: usize| -> T {
            if gate.is_some() {
                T::from_f64((lg[j] - lg[i]).exp())
            } else {
                T::ONE
            }
        };

        // The unit lower triangular system (only its strict lower part is read).
        let mut a = Mat::<T>::zeros(l, l);
        triangular::matmul(
            a.as_mut(),
            BlockStructure::StrictTriangularLower,
            Accum::Replace,
            kc,
            BlockStructure::Rectangular,
            kc.transpose(),
            BlockStructure::Rectangular,
            T::ONE,
            par,
        );
        for i in 0..l {
            for j in i + 1..l {
                a[(j, i)] = a[(j, i)] * bc[j] * decay(j, i);
            }
        }
        // Right-hand side beta_j (v_j - Gamma_j S_0^T k_j), solved in place.
        let mut u = Mat::<T>::zeros(l, dv);
        matmul(u.as_mut(), Accum::Replace, kc, state.rb(), T::ONE, par);
        for j in 0..l {
            let gj = T::from_f64(lg[j].exp());
            for c in 0..dv {
                u[(j, c)] = bc[j] * (vc[(j, c)] - gj * u[(j, c)]);
            }
        }
        solve_unit_lower_triangular_in_place(a.as_ref(), u.as_mut(), par);

        // Outputs read after each token's last sub-step.
        let mut p = Mat::<T>::zeros(ct, l);
        matmul(p.as_mut(), Accum::Replace, qc, kc.transpose(), T::ONE, par);
        let mut o = out.rb_mut().subrows_mut(t0, ct);
        matmul(o.rb_mut(), Accum::Replace, qc, state.rb(), T::ONE, par);
        for tok in 0..ct {
            let jt = tok * n_h + n_h - 1;
            for i in 0..l {
                p[(tok, i)] = if i <= jt {
                    p[(tok, i)] * decay(jt, i)
                } else {
                    T::ZERO
                };
            }
            if gate.is_some() {
                let gj = T::from_f64(lg[jt].exp());
                for c in 0..dv {
                    o[(tok, c)] *= gj;
                }
            }
        }
        matmul(o, Accum::Add, p.as_ref(), u.as_ref(), T::ONE, par);

        // Next state.
        if gate.is_some() {
            let last = l - 1;
            let gl = T::from_f64(lg[last].exp());
            for c in 0..dv {
                for r in 0..dk {
                    state[(r, c)] *= gl;
                }
            }
            for i in 0..l {
                let d = decay(last, i);
                for c in 0..dv {
                    u[(i, c)] *= d;
                }
            }
        }
        matmul(
            state.rb_mut(),
            Accum::Add,
            kc.transpose(),
            u.as_ref(),
            T::ONE,
            par,
        );
        t0 += ct;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::uniform as lcg;

    #[test]
    fn chunked_equals_token_by_token() {
        let mut seed = 5;
        let (tokens, dk, dv) = (23, 6, 5);
        for n_h in 1..=3 {
            for gated in [false, true] {
                let q = Mat::from_fn(tokens, dk, |_, _| lcg(&mut seed));
                let k = Mat::from_fn(tokens * n_h, dk, |_, _| lcg(&mut seed));
                let v = Mat::from_fn(tokens * n_h, dv, |_, _| lcg(&mut seed));
                let beta: Vec<f64> = (0..tokens * n_h).map(|_| 1.0 + lcg(&mut seed)).collect();
                let gate: Vec<f64> = (0..tokens).map(|_| lcg(&mut seed) - 0.3).collect();
                let s0 = Mat::from_fn(dk, dv, |_, _| lcg(&mut seed));
                // Token by token.
                let mut s = s0.clone();
                let mut want = Mat::<f64>::zeros(tokens, dv);
                for t in 0..tokens {
                    if gated {
                        s *= faer::Scale(gate[t].exp());
                    }
                    for h in 0..n_h {
                        let j = t * n_h + h;
                        let kj = k.row(j).transpose().to_owned();
                        let stk = s.transpose() * &kj;
                        for r in 0..dk {
                            for c in 0..dv {
                                s[(r, c)] += beta[j] * kj[r] * (v[(j, c)] - stk[c]);
                            }
                        }
                    }
                    let o = s.transpose() * q.row(t).transpose();
                    for c in 0..dv {
                        want[(t, c)] = o[c];
                    }
                }
                for chunk in [1, 4, 7, 64] {
                    let seq = Sequence {
                        q: q.as_ref(),
                        k: k.as_ref(),
                        v: v.as_ref(),
                        beta: &beta,
                        gate: gated.then_some(gate.as_slice()),
                        n_h,
                    };
                    let mut state = s0.clone();
                    let mut out = Mat::<f64>::zeros(tokens, dv);
                    run(&seq, state.as_mut(), out.as_mut(), chunk, Par::Seq).unwrap();
                    assert!((&out - &want).norm_max() < 1e-10, "n_h {n_h} chunk {chunk}");
                    assert!((&state - &s).norm_max() < 1e-10);
                }
            }
        }
    }
}
