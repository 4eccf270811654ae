//! Leverage scores and Lewis weights: arrays borrowed, kernels run without the GIL.

use numpy::{Element, IntoPyArray, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use randla::sampling::{leverage, lewis};
use randla::Real;

use crate::convert::{by_float_dtype, mat_ref};

const MATRIX_DTYPE: &str = "arrays must be float32 or float64 matrices";
use crate::error::run;
use crate::krylov::Holder;

type Scores<'py> = (Bound<'py, PyAny>, usize);

fn exact_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
) -> PyResult<Scores<'py>> {
    let a: PyReadonlyArray2<'py, T> = a.extract()?;
    let a = mat_ref(&a);
    let (scores, rank) = run(py, || leverage::exact(a))?;
    Ok((scores.into_pyarray(py).into_any(), rank))
}

/// Exact leverage scores of a dense matrix: (scores, rank).
#[pyfunction]
fn leverage_exact<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Scores<'py>> {
    by_float_dtype!(a, MATRIX_DTYPE, |T| exact_typed::<T>(py, a))
}

fn sketched_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    sa: &Bound<'py, PyAny>,
    jl: Option<&Bound<'py, PyAny>>,
    rounding: f64,
) -> PyResult<Scores<'py>> {
    let sa: PyReadonlyArray2<'py, T> = sa.extract()?;
    let jl: Option<PyReadonlyArray2<'py, T>> = jl.map(|j| j.extract()).transpose()?;
    let holder = Holder::<T>::new(a)?;
    let op = holder.operator()?;
    let (sa, jl) = (mat_ref(&sa), jl.as_ref().map(mat_ref));
    let outcome = run(py, || leverage::approximate(op.as_ref(), sa, jl, rounding));
    if let Some(err) = holder.take_error() {
        return Err(err);
    }
    let (scores, rank) = outcome?;
    Ok((scores.into_pyarray(py).into_any(), rank))
}

/// Sketched leverage scores from `sa = S A` and an optional JL matrix (rank x t),
/// with the relative error allowed for rounding (f32 products where it
/// covers them; 0: none): (scores, rank).
#[pyfunction]
#[pyo3(signature = (a, sa, jl=None, rounding=0.0))]
fn leverage_sketched<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    sa: &Bound<'py, PyAny>,
    jl: Option<&Bound<'py, PyAny>>,
    rounding: f64,
) -> PyResult<Scores<'py>> {
    by_float_dtype!(sa, MATRIX_DTYPE, |T| sketched_typed::<T>(
        py, a, sa, jl, rounding
    ))
}

type Weights<'py> = (Bound<'py, PyAny>, usize, bool, f64);

#[allow(clippy::too_many_arguments)]
fn lewis_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    p: f64,
    tol: f64,
    maxiter: usize,
    method: &str,
    sketch_rows: usize,
    jl_columns: usize,
    seed: u64,
) -> PyResult<Weights<'py>> {
    let a: PyReadonlyArray2<'py, T> = a.extract()?;
    let a = mat_ref(&a);
    let exact = match method {
        "exact" => true,
        "approx" => false,
        other => {
            return Err(PyValueError::new_err(format!(
                "method must be 'exact' or 'approx', got {other:?}"
            )))
        }
    };
    let n = a.nrows();
    let r = run(py, || {
        // One sketch for every iteration: the iteration then converges to the
        // fixed point of the sketched map (a (1 +- eps) approximation).
        let scaled_exact = exact.then(|| leverage::ScaledExact::new(a));
        let mut lev = |scale: &[f64]| {
            if let Some(e) = &scaled_exact {
                e.scores(scale)
            } else {
                leverage::sketched_scaled(a, scale, sketch_rows, jl_columns, seed)
            }
        };
        lewis::lewis_weights(n, p, tol, maxiter, &mut lev)
    })?;
    Ok((
        r.weights.into_pyarray(py).into_any(),
        r.iterations,
        r.converged,
        r.change,
    ))
}

/// l_p Lewis weights of a dense matrix: (weights, iterations, converged, last change).
#[pyfunction]
#[pyo3(signature = (a, p, tol, maxiter, method, sketch_rows, jl_columns, seed))]
#[allow(clippy::too_many_arguments)]
fn lewis_weights<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    p: f64,
    tol: f64,
    maxiter: usize,
    method: &str,
    sketch_rows: usize,
    jl_columns: usize,
    seed: u64,
) -> PyResult<Weights<'py>> {
    by_float_dtype!(a, MATRIX_DTYPE, |T| {
        lewis_typed::<T>(
            py,
            a,
            p,
            tol,
            maxiter,
            method,
            sketch_rows,
            jl_columns,
            seed,
        )
    })
}

/// `k` row indices drawn from `0..n` (see `randla::sketch::sparse::sample_indices`), as int64.
#[pyfunction]
#[pyo3(signature = (seed, k, n, p, replace))]
fn sample_indices<'py>(
    py: Python<'py>,
    seed: u64,
    k: usize,
    n: usize,
    p: Option<numpy::PyReadonlyArray1<'py, f64>>,
    replace: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let probabilities = match &p {
        Some(p) => Some(crate::convert::slice(p, "p")?),
        None => None,
    };
    if let Some(p) = probabilities {
        if p.len() != n {
            return Err(PyValueError::new_err("p must have n entries"));
        }
        if !replace && p.iter().filter(|&&x| x > 0.0).count() < k {
            return Err(PyValueError::new_err(
                "fewer rows with positive probability than samples without replacement",
            ));
        }
    } else if !replace && k > n {
        return Err(PyValueError::new_err(
            "more samples than rows without replacement",
        ));
    }
    let indices = run(py, || {
        Ok(randla::sketch::sparse::sample_indices(
            seed,
            k,
            n,
            probabilities,
            replace,
        ))
    })?;
    let indices: Vec<i64> = indices.into_iter().map(|i| i as i64).collect();
    Ok(indices.into_pyarray(py).into_any())
}

type LpAnswer<'py> = (Bound<'py, PyAny>, f64, usize, bool);

fn lp_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    c: numpy::PyReadonlyArray1<'py, f64>,
    p: f64,
    tol: f64,
    maxiter: usize,
) -> PyResult<LpAnswer<'py>> {
    let a: PyReadonlyArray2<'py, T> = a.extract()?;
    let b: numpy::PyReadonlyArray1<'py, T> = b.extract()?;
    let a = mat_ref(&a);
    let (b, c) = (
        crate::convert::slice(&b, "b")?,
        crate::convert::slice(&c, "weights")?,
    );
    let r = run(py, || {
        randla::sampling::lp_regression::lp_regression(a, b, c, p, tol, maxiter)
    })?;
    Ok((
        r.x.into_pyarray(py).into_any(),
        r.objective,
        r.iterations,
        r.converged,
    ))
}

/// l_p regression by IRLS on rows weighted by `c`: (x, objective, iterations, converged).
#[pyfunction]
#[pyo3(signature = (a, b, c, p, tol, maxiter))]
fn lp_regression<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    c: numpy::PyReadonlyArray1<'py, f64>,
    p: f64,
    tol: f64,
    maxiter: usize,
) -> PyResult<LpAnswer<'py>> {
    by_float_dtype!(a, MATRIX_DTYPE, |T| lp_typed::<T>(
        py, a, b, c, p, tol, maxiter
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lp_regression, m)?)?;
    m.add_function(wrap_pyfunction!(sample_indices, m)?)?;
    m.add_function(wrap_pyfunction!(leverage_exact, m)?)?;
    m.add_function(wrap_pyfunction!(leverage_sketched, m)?)?;
    m.add_function(wrap_pyfunction!(lewis_weights, m)?)
}
