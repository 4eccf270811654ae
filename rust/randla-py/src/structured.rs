//! Monarch products and projection, Householder products and the delta rule.
//!
//! The Python layer (`randla.monarch`, `randla.householder`) validates
//! shapes and values, casts every array to one float dtype and makes the
//! block stacks C-contiguous; here the arrays are borrowed and the kernels
//! run without the GIL.

use faer::{Mat, MatMut, MatRef, Par};
use numpy::{
    Element, IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn,
    PyReadwriteArray2, PyReadwriteArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use randla::structured::delta_rule::{self as recurrence, Sequence};
use randla::structured::householder::{self, Side};
use randla::structured::monarch::{self, Blocks, Monarch};
use randla::Real;
use rayon::prelude::*;

use crate::convert::{by_float_dtype, mat_mut, mat_ref, to_numpy};
use crate::error::run;

const DTYPE: &str = "arrays must be float32 or float64";

/// A C-contiguous array's values and shape.
fn contiguous<'a, T: Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<(&'a [T], Vec<usize>)> {
    let data = a
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be C-contiguous")))?;
    Ok((data, a.shape().to_vec()))
}

fn blocks<'a, T: Real + Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<Blocks<'a, T>> {
    let (data, shape) = contiguous(a, name)?;
    if shape.len() != 3 {
        return Err(PyValueError::new_err(format!("{name} must be 3-D")));
    }
    Blocks::new(data, shape[0], shape[1], shape[2])
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn monarch_apply_typed<T: Real + Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    w1: &Bound<'_, PyAny>,
    w2: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    transpose: bool,
    name: &str,
) -> PyResult<()> {
    let x: PyReadonlyArray2<T> = x.extract()?;
    let (w1, w2): (PyReadonlyArrayDyn<T>, PyReadonlyArrayDyn<T>) = (w1.extract()?, w2.extract()?);
    let mut out: PyReadwriteArray2<T> = out.extract()?;
    let mon = Monarch::new(blocks(&w1, "w1")?, blocks(&w2, "w2")?)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let (x, y) = (mat_ref(&x), mat_mut(&mut out));
    run(py, || {
        mon.apply_rows(x, y, transpose).map_err(|e| match e {
            // The input's finiteness is checked in the product, under its Python name.
            randla::Error::InvalidArgument(m) if m == monarch::NONFINITE_INPUT => {
                randla::Error::InvalidArgument(format!("{name} contains NaN or infinity"))
            }
            e => e,
        })
    })
}

/// `out = x M^T` (or `x M` when `transpose`) for the Monarch matrix of (w1, w2).
#[pyfunction]
#[pyo3(signature = (x, w1, w2, out, transpose=false, name="x"))]
fn monarch_apply(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    w1: &Bound<'_, PyAny>,
    w2: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    transpose: bool,
    name: &str,
) -> PyResult<()> {
    by_float_dtype!(dyn x, DTYPE, |T| monarch_apply_typed::<T>(
        py, x, w1, w2, out, transpose, name
    ))
}

fn monarch_project_typed<'py, T: Real + Element>(
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
    nblocks: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let m: PyReadonlyArray2<T> = m.extract()?;
    let m = mat_ref(&m);
    let (w1, w2) = run(py, || monarch::project(m, nblocks))?;
    Ok((
        w1.into_pyarray(py).into_any(),
        w2.into_pyarray(py).into_any(),
    ))
}

/// Flat C-order (w1, w2) of the Frobenius-optimal Monarch projection of m.
#[pyfunction]
fn monarch_project<'py>(
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
    nblocks: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    by_float_dtype!(dyn m, DTYPE, |T| monarch_project_typed::<T>(py, m, nblocks))
}

fn side_of(side: &str) -> PyResult<Side> {
    match side {
        "left" => Ok(Side::Left),
        "right" => Ok(Side::Right),
        other => Err(PyValueError::new_err(format!(
            "side must be 'left' or 'right', got {other:?}"
        ))),
    }
}

fn householder_apply_typed<T: Real + Element>(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    tau: &Bound<'_, PyAny>,
    c: &Bound<'_, PyAny>,
    side: Side,
    transpose: bool,
) -> PyResult<()> {
    let (v, tau): (PyReadonlyArrayDyn<T>, PyReadonlyArrayDyn<T>) = (v.extract()?, tau.extract()?);
    let mut c: PyReadwriteArrayDyn<T> = c.extract()?;
    let (vd, vs) = contiguous(&v, "V")?;
    let (td, ts) = contiguous(&tau, "tau")?;
    let cs = c.shape().to_vec();
    if vs.len() != 3 || ts.len() != 2 || cs.len() != 3 || ts[0] != vs[0] || cs[0] != vs[0] {
        return Err(PyValueError::new_err(
            "V, tau and C must be stacks (batch, n, k), (batch, k), (batch, rows, cols)",
        ));
    }
    let cd = c
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("C must be C-contiguous"))?;
    let (batch, n, k, rows, cols) = (vs[0], vs[1], vs[2], cs[1], cs[2]);
    run(py, || {
        let one = |i: usize, cm: &mut [T], par: Par| {
            let vm = MatRef::from_row_major_slice(&vd[i * n * k..(i + 1) * n * k], n, k);
            let cm = MatMut::from_row_major_slice_mut(cm, rows, cols);
            householder::apply(vm, &td[i * k..(i + 1) * k], cm, side, transpose, par)
        };
        if batch == 1 {
            one(0, cd, randla::parallel::faer_par())
        } else {
            randla::parallel::install(|| {
                cd.par_chunks_mut((rows * cols).max(1))
                    .enumerate()
                    .try_for_each(|(i, cm)| one(i, cm, Par::Seq))
            })
        }
    })
}

/// Applies H_1 ... H_k (or its transpose) to each C of a stack, in place.
#[pyfunction]
fn householder_apply(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    tau: &Bound<'_, PyAny>,
    c: &Bound<'_, PyAny>,
    side: &str,
    transpose: bool,
) -> PyResult<()> {
    let side = side_of(side)?;
    by_float_dtype!(dyn v, DTYPE, |T| householder_apply_typed::<T>(
        py, v, tau, c, side, transpose
    ))
}

fn householder_wy_typed<'py, T: Real + Element>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
    tau: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let v: PyReadonlyArray2<T> = v.extract()?;
    let tau: PyReadonlyArray1<T> = tau.extract()?;
    let tau = crate::convert::slice(&tau, "tau")?;
    let v = mat_ref(&v);
    let t: Mat<T> = run(py, || householder::wy(v, tau, randla::parallel::faer_par()))?;
    Ok(to_numpy(py, &t).into_any())
}

/// The upper triangular T with H_1 ... H_k = I - V T V^T.
#[pyfunction]
fn householder_wy<'py>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
    tau: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    by_float_dtype!(dyn v, DTYPE, |T| householder_wy_typed::<T>(py, v, tau))
}

/// Rows `0..len` of head `hi` in batch `bi` of a C-order `(B, len, H, width)` array.
fn head_rows<T: Element>(
    data: &[T],
    (bi, hi, h): (usize, usize, usize),
    len: usize,
    width: usize,
) -> MatRef<'_, T> {
    let start = bi * len * h * width + hi * width;
    let end = start + (len.max(1) - 1) * h * width + width;
    MatRef::from_row_major_slice_with_stride(&data[start..end], len, width, h * width)
}

#[allow(clippy::too_many_arguments)]
fn delta_rule_typed<T: Real + Element>(
    py: Python<'_>,
    q: &Bound<'_, PyAny>,
    k: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    beta: &Bound<'_, PyAny>,
    gate: Option<&Bound<'_, PyAny>>,
    state: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    n_h: usize,
    chunk: usize,
) -> PyResult<()> {
    let q: PyReadonlyArrayDyn<T> = q.extract()?;
    let k: PyReadonlyArrayDyn<T> = k.extract()?;
    let v: PyReadonlyArrayDyn<T> = v.extract()?;
    let beta: PyReadonlyArrayDyn<T> = beta.extract()?;
    let gate: Option<PyReadonlyArrayDyn<T>> = gate.map(|g| g.extract()).transpose()?;
    let mut state: PyReadwriteArrayDyn<T> = state.extract()?;
    let mut out: PyReadwriteArrayDyn<T> = out.extract()?;
    let (qd, qs) = contiguous(&q, "q")?;
    let (kd, _) = contiguous(&k, "k")?;
    let (vd, vs) = contiguous(&v, "v")?;
    let (bd, _) = contiguous(&beta, "beta")?;
    let gd = match &gate {
        Some(g) => Some(contiguous(g, "gate")?.0),
        None => None,
    };
    let [b, t, h, dk] = qs[..] else {
        return Err(PyValueError::new_err("q must be 4-D"));
    };
    let dv = vs[3];
    let steps = t * n_h;
    if kd.len() != b * steps * h * dk || vd.len() != b * steps * h * dv || bd.len() != b * steps * h
    {
        return Err(PyValueError::new_err("k, v or beta has the wrong size"));
    }
    let sd = state
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("state must be C-contiguous"))?;
    let od = out
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be C-contiguous"))?;
    if sd.len() != b * h * dk * dv || od.len() != b * t * h * dv {
        return Err(PyValueError::new_err("state or out has the wrong size"));
    }
    run(py, || {
        // Each (batch, head) has a contiguous K x V state and a T x V view
        // of `out` (row stride H V); faer's splits give disjoint views.
        let mut outs = Vec::with_capacity(b * h);
        let mut rest = MatMut::from_row_major_slice_mut(od, b * t, h * dv);
        for _ in 0..b {
            let (mut rows, below) = rest.split_at_row_mut(t);
            for _ in 0..h {
                let (head, right) = rows.split_at_col_mut(dv);
                outs.push(head);
                rows = right;
            }
            rest = below;
        }
        let direct = recurrence::direct_is_faster::<T>(dk);
        // Tasks: (batch, head, first column, state columns, output columns).
        // The direct recurrence runs each panel of columns on its own.
        // Panels of 16 columns when there would be fewer than two panels of
        // 32 per thread (fewer leave threads idle at the end).
        let panels = b * h * dv.div_ceil(recurrence::PANEL);
        let width = match direct {
            false => dv.max(1),
            true if panels < 2 * randla::parallel::num_threads() => recurrence::PANEL / 2,
            true => recurrence::PANEL,
        };
        let mut tasks = Vec::new();
        for (bh, (s, o)) in sd.chunks_mut(dk * dv).zip(outs).enumerate() {
            let (mut s, mut o) = (MatMut::from_row_major_slice_mut(s, dk, dv), o);
            for c0 in (0..dv).step_by(width) {
                let w = width.min(dv - c0);
                let (sl, sr) = s.split_at_col_mut(w);
                let (ol, or) = o.split_at_col_mut(w);
                tasks.push((bh, c0, sl, ol));
                (s, o) = (sr, or);
            }
        }
        randla::parallel::install(|| {
            // beta and gate of each (batch, head), gathered once for all of
            // the head's panels.
            let strided = |data: &[T], len: usize, bh: usize| -> Vec<T> {
                let (bi, hi) = (bh / h, bh % h);
                (0..len).map(|i| data[(bi * len + i) * h + hi]).collect()
            };
            let betas: Vec<Vec<T>> = (0..b * h)
                .into_par_iter()
                .map(|bh| strided(bd, steps, bh))
                .collect();
            let gates: Option<Vec<Vec<T>>> = gd.map(|g| {
                (0..b * h)
                    .into_par_iter()
                    .map(|bh| strided(g, t, bh))
                    .collect()
            });
            tasks
                .into_par_iter()
                .map(|(bh, c0, s, o)| -> randla::Result<()> {
                    let rows = |data, len, width| head_rows(data, (bh / h, bh % h, h), len, width);
                    let seq = Sequence {
                        q: rows(qd, t, dk),
                        k: rows(kd, steps, dk),
                        v: rows(vd, steps, dv).subcols(c0, s.ncols()),
                        beta: &betas[bh],
                        gate: gates.as_ref().map(|g| g[bh].as_slice()),
                        n_h,
                    };
                    if direct {
                        recurrence::run_direct(&seq, s, o)
                    } else {
                        recurrence::run(&seq, s, o, chunk, Par::Seq)
                    }
                })
                .collect::<randla::Result<()>>()
        })?;
        Ok(())
    })
}

/// The delta-rule recurrence: writes the outputs into `out` (B,T,H,V) and
/// replaces `state` (B,H,K,V, the initial state) with the final state.
#[pyfunction]
#[pyo3(signature = (q, k, v, beta, gate, state, out, n_h, chunk_size))]
#[allow(clippy::too_many_arguments)]
fn delta_rule<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    beta: &Bound<'py, PyAny>,
    gate: Option<&Bound<'py, PyAny>>,
    state: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    n_h: usize,
    chunk_size: usize,
) -> PyResult<()> {
    by_float_dtype!(dyn q, DTYPE, |T| delta_rule_typed::<T>(
        py, q, k, v, beta, gate, state, out, n_h, chunk_size
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(monarch_apply, m)?)?;
    m.add_function(wrap_pyfunction!(monarch_project, m)?)?;
    m.add_function(wrap_pyfunction!(householder_apply, m)?)?;
    m.add_function(wrap_pyfunction!(householder_wy, m)?)?;
    m.add_function(wrap_pyfunction!(delta_rule, m)?)?;
    Ok(())
}
