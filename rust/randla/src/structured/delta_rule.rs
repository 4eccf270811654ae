//! The DeltaNet / DeltaProduct recurrence: token by token in fused passes
//! ([`run_direct`]) or chunkwise with the WY/UT transform ([`run`]).
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
    check(seq, &state, &out)?;
    ensure!(chunk >= 1, "chunk_size must be >= 1");
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

/// Columns of the state that [`run_direct`] carries through the whole
/// sequence together: the panel's `d_k x PANEL` block of the state stays in
/// L1 and its three `PANEL`-wide vectors (the new values, the next key's
/// product and the output) stay in registers.
pub const PANEL: usize = 32;

/// Sub-steps ahead that [`run_direct`] prefetches its input rows.
const AHEAD: usize = 16;

/// Whether [`run_direct`] is the faster form for keys of length `dk`: while
/// a `dk x PANEL` panel of the state fits in L1 (32 KiB, `dk <= 128` in
/// float64, `dk <= 256` in float32). Measured on one core, `d_k = d_v`: in
/// float64 the direct form is 20% faster than the best chunk length at 64,
/// equal at 128, 20% slower at 256; in float32 1.7x and 1.3x faster at 64
/// and 128; at least as fast as the default chunk length (64) throughout.
pub fn direct_is_faster<T>(dk: usize) -> bool {
    dk * PANEL * std::mem::size_of::<T>() <= 32 * 1024
}

/// Runs the recurrence token by token, as API.md states it, with one fused
/// pass over the state per sub-step: the pass that applies sub-step `j`
/// (`S <- gamma S + beta_j k_j d^T` with `d = v_j - gamma S^T k_j`) also forms
/// `S^T k_{j+1}` for the next sub-step and, after a token's last sub-step,
/// its output `S^T q_t`. Columns of the state evolve independently, so the
/// state runs in panels of [`PANEL`] columns (8 or 16 when `d_v` is that
/// narrow), each held in L1 for the whole sequence; a column's arithmetic
/// does not depend on its panel's width. Same arguments as [`run`], without
/// the chunk length.
///
/// Per sub-step this reads and writes the state once and does
/// `(2 + 1/n_h) d_k d_v` multiply-adds, the recurrence's own count; the
/// chunked form does as many plus `O(L (d_k + d_v))` more, in small GEMMs,
/// and wins once a panel no longer fits in L1 ([`direct_is_faster`]).
pub fn run_direct<T: Real>(
    seq: &Sequence<'_, T>,
    mut state: MatMut<'_, T>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    check(seq, &state, &out)?;
    // Narrow states run in narrower panels (less padding).
    match seq.v.ncols() {
        0..=8 => run_panels::<T, 8>(seq, state.rb_mut(), out.rb_mut()),
        9..=16 => run_panels::<T, 16>(seq, state.rb_mut(), out.rb_mut()),
        _ => run_panels::<T, PANEL>(seq, state.rb_mut(), out.rb_mut()),
    }
    Ok(())
}

/// [`run_direct`] on panels of `P` columns, after the checks.
fn run_panels<T: Real, const P: usize>(
    seq: &Sequence<'_, T>,
    mut state: MatMut<'_, T>,
    mut out: MatMut<'_, T>,
) {
    let (tokens, dk) = seq.q.shape();
    let dv = seq.v.ncols();
    if tokens == 0 || dk == 0 || dv == 0 {
        return;
    }
    let (mut qc, mut kc, mut vc) = (None, None, None);
    let q = row_major(seq.q, &mut qc);
    let k = row_major(seq.k, &mut kc);
    let v = row_major(seq.v, &mut vc);
    let gamma: Option<Vec<T>> = seq
        .gate
        .map(|g| g.iter().map(|&x| T::from_f64(x.to_f64().exp())).collect());
    let mut s = vec![T::ZERO; dk * P];
    for c0 in (0..dv).step_by(P) {
        let width = P.min(dv - c0);
        // The panel's columns; columns past `width` stay zero (their
        // values and products are zero at every sub-step).
        for (r, row) in s.chunks_exact_mut(P).enumerate() {
            for (c, x) in row.iter_mut().enumerate() {
                *x = if c < width {
                    state[(r, c0 + c)]
                } else {
                    T::ZERO
                };
            }
        }
        let cols = Panel {
            q,
            k,
            v,
            beta: seq.beta,
            gamma: gamma.as_deref(),
            n_h: seq.n_h,
            c0,
            width,
        };
        crate::simd::dispatch(
            #[inline(always)]
            || cols.run::<P>(&mut s, out.rb_mut()),
        );
        for (r, row) in s.chunks_exact(P).enumerate() {
            for (c, &x) in row[..width].iter().enumerate() {
                state[(r, c0 + c)] = x;
            }
        }
    }
}

type Rows<'a, T> = MatRef<'a, T, usize, usize, isize, faer::ContiguousFwd>;

/// `m` with contiguous rows: itself, or a copy kept in `copy`.
fn row_major<'a, T: Real>(m: MatRef<'a, T>, copy: &'a mut Option<Mat<T>>) -> Rows<'a, T> {
    if let Some(rows) = m.try_as_row_major() {
        return rows;
    }
    // A column-major copy of m^T has contiguous rows of m.
    let owned = copy.insert(m.transpose().to_owned());
    owned
        .as_ref()
        .transpose()
        .try_as_row_major()
        .expect("the transpose of a column-major matrix is row-major")
}

/// The inputs of one panel of columns `c0..c0 + width`.
struct Panel<'a, T> {
    q: Rows<'a, T>,
    k: Rows<'a, T>,
    v: Rows<'a, T>,
    beta: &'a [T],
    gamma: Option<&'a [T]>,
    n_h: usize,
    c0: usize,
    width: usize,
}

impl<T: Real> Panel<'_, T> {
    /// The whole sequence on the panel `s` (`d_k` rows of `P`).
    #[inline(always)]
    fn run<const P: usize>(&self, s: &mut [T], mut out: MatMut<'_, T>) {
        let (tokens, steps) = (self.q.nrows(), self.k.nrows());
        let (c0, width) = (self.c0, self.width);
        // S^T k_0.
        let mut w = [T::ZERO; P];
        for (row, &kr) in s.chunks_exact(P).zip(self.k.row(0).as_slice()) {
            for c in 0..P {
                w[c] += kr * row[c];
            }
        }
        let mut d = [T::ZERO; P];
        let mut o = [T::ZERO; P];
        for t in 0..tokens {
            let qt = self.q.row(t).as_slice();
            for h in 0..self.n_h {
                let j = t * self.n_h + h;
                let gamma = match self.gamma {
                    Some(g) if h == 0 => Some(g[t]),
                    _ => None,
                };
                let g = gamma.unwrap_or(T::ONE);
                let vj = &self.v.row(j).as_slice()[c0..c0 + width];
                for c in 0..width {
                    d[c] = vj[c] - g * w[c];
                }
                // Rows of one head are a head count apart in (B, T, H, K)
                // arrays, often a page or more: prefetch them ahead.
                let ahead = j + AHEAD;
                if ahead < steps {
                    crate::simd::prefetch_slice(self.k.row(ahead).as_slice());
                    crate::simd::prefetch_slice(&self.v.row(ahead).as_slice()[c0..c0 + width]);
                    if h == 0 && ahead / self.n_h < tokens {
                        crate::simd::prefetch_slice(self.q.row(ahead / self.n_h).as_slice());
                    }
                }
                let kj = self.k.row(j).as_slice();
                let kn = self.k.row((j + 1).min(steps - 1)).as_slice();
                let last = h + 1 == self.n_h;
                let b = self.beta[j];
                w = match (gamma, last) {
                    (None, false) => {
                        step::<T, P, false, false>(s, kj, b, &d, T::ONE, kn, qt, &mut o)
                    }
                    (None, true) => step::<T, P, false, true>(s, kj, b, &d, T::ONE, kn, qt, &mut o),
                    (Some(g), false) => step::<T, P, true, false>(s, kj, b, &d, g, kn, qt, &mut o),
                    (Some(g), true) => step::<T, P, true, true>(s, kj, b, &d, g, kn, qt, &mut o),
                };
                if last {
                    match out.rb_mut().try_as_row_major_mut() {
                        Some(rows) => rows.row_mut(t).as_slice_mut()[c0..c0 + width]
                            .copy_from_slice(&o[..width]),
                        None => {
                            for c in 0..width {
                                out[(t, c0 + c)] = o[c];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One sub-step on a panel: `s_r <- gamma s_r + (beta k_r) d` for every row
/// `r`; returns `sum_r kn_r s_r` and, with `OUT`, writes `sum_r q_r s_r`
/// into `o`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<T: Real, const P: usize, const GATED: bool, const OUT: bool>(
    s: &mut [T],
    k: &[T],
    beta: T,
    d: &[T; P],
    gamma: T,
    kn: &[T],
    q: &[T],
    o: &mut [T; P],
) -> [T; P] {
    let mut next = [T::ZERO; P];
    let mut out = [T::ZERO; P];
    for (row, ((&kr, &knr), &qr)) in s.chunks_exact_mut(P).zip(k.iter().zip(kn).zip(q)) {
        let row: &mut [T; P] = row.try_into().expect("rows of P");
        let a = beta * kr;
        for c in 0..P {
            let x = if GATED {
                a.mul_add(d[c], gamma * row[c])
            } else {
                a.mul_add(d[c], row[c])
            };
            row[c] = x;
            next[c] = knr.mul_add(x, next[c]);
            if OUT {
                out[c] = qr.mul_add(x, out[c]);
            }
        }
    }
    if OUT {
        *o = out;
    }
    next
}

/// Checks the shapes of a sequence against its state and output.
fn check<T: Real>(seq: &Sequence<'_, T>, state: &MatMut<'_, T>, out: &MatMut<'_, T>) -> Result<()> {
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
    ensure!(n_h >= 1, "n_h must be >= 1");
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::uniform as lcg;

    #[test]
    fn chunked_equals_token_by_token() {
        let mut seed = 5;
        let (tokens, dk, dv) = (23, 6, 37);
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
                // The direct form, from column-major inputs (copied to rows)
                // and from row-major ones.
                let rows = |m: &Mat<f64>| -> Vec<f64> {
                    (0..m.nrows() * m.ncols())
                        .map(|i| m[(i / m.ncols(), i % m.ncols())])
                        .collect()
                };
                let (qr, kr, vr) = (rows(&q), rows(&k), rows(&v));
                let row_major = Sequence {
                    q: MatRef::from_row_major_slice(&qr, tokens, dk),
                    k: MatRef::from_row_major_slice(&kr, tokens * n_h, dk),
                    v: MatRef::from_row_major_slice(&vr, tokens * n_h, dv),
                    beta: &beta,
                    gate: gated.then_some(gate.as_slice()),
                    n_h,
                };
                let col_major = Sequence {
                    q: q.as_ref(),
                    k: k.as_ref(),
                    v: v.as_ref(),
                    ..row_major
                };
                for seq in [row_major, col_major] {
                    let mut state = s0.clone();
                    let mut out = Mat::<f64>::zeros(tokens, dv);
                    run_direct(&seq, state.as_mut(), out.as_mut()).unwrap();
                    assert!((&out - &want).norm_max() < 1e-12, "direct, n_h {n_h}");
                    assert!((&state - &s).norm_max() < 1e-12);
                }
            }
        }
    }
    #[test]
    fn direct_matches_chunked_for_every_panel_width() {
        let mut seed = 11;
        let (tokens, dk, n_h) = (19, 7, 2);
        for dv in [5, 12, 37] {
            let q = Mat::from_fn(tokens, dk, |_, _| lcg(&mut seed));
            let k = Mat::from_fn(tokens * n_h, dk, |_, _| lcg(&mut seed));
            let v = Mat::from_fn(tokens * n_h, dv, |_, _| lcg(&mut seed));
            let beta: Vec<f64> = (0..tokens * n_h).map(|_| 1.0 + lcg(&mut seed)).collect();
            let gate: Vec<f64> = (0..tokens).map(|_| lcg(&mut seed) - 0.3).collect();
            let s0 = Mat::from_fn(dk, dv, |_, _| lcg(&mut seed));
            let seq = Sequence {
                q: q.as_ref(),
                k: k.as_ref(),
                v: v.as_ref(),
                beta: &beta,
                gate: Some(&gate),
                n_h,
            };
            let (mut s1, mut o1) = (s0.clone(), Mat::<f64>::zeros(tokens, dv));
            run(&seq, s1.as_mut(), o1.as_mut(), 4, Par::Seq).unwrap();
            let (mut s2, mut o2) = (s0.clone(), Mat::<f64>::zeros(tokens, dv));
            run_direct(&seq, s2.as_mut(), o2.as_mut()).unwrap();
            assert!((&o1 - &o2).norm_max() < 1e-12, "dv {dv}");
            assert!((&s1 - &s2).norm_max() < 1e-12, "dv {dv}");
        }
    }
}
