//! Least squares: the Python layer composes the sketches; this file borrows
//! the arrays and runs the core's solvers without the GIL.

use numpy::{Element, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use randla::lstsq::{self, PreconditionOptions, Solution};
use randla::Real;

use crate::convert::{by_float_dtype, mat_ref, to_numpy};
use crate::error::run;
use crate::krylov::Holder;

type Answer<'py> = (
    Bound<'py, PyAny>,
    Vec<f64>,
    usize,
    Vec<bool>,
    usize,
    Option<&'static str>,
);

#[allow(clippy::too_many_arguments)]
fn solve<'py, T: Real + Element>(
    py: Python<'py>,
    method: &str,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    sa: Option<&Bound<'py, PyAny>>,
    sb: Option<&Bound<'py, PyAny>>,
    options: PreconditionOptions,
) -> PyResult<Answer<'py>> {
    let b: PyReadonlyArray2<'py, T> = b.extract()?;
    let sa: Option<PyReadonlyArray2<'py, T>> = sa.map(|x| x.extract()).transpose()?;
    let sb: Option<PyReadonlyArray2<'py, T>> = sb.map(|x| x.extract()).transpose()?;
    let holder = Holder::<T>::new(a)?;
    let op = holder.operator()?;
    let b_view = mat_ref(&b);
    let sa_view = sa.as_ref().map(mat_ref);
    let sb_view = sb.as_ref().map(mat_ref);
    fn need<'a, T>(
        v: Option<faer::MatRef<'a, T>>,
        method: &str,
        name: &str,
    ) -> PyResult<faer::MatRef<'a, T>> {
        v.ok_or_else(|| PyValueError::new_err(format!("method {method:?} needs {name}")))
    }
    let outcome = match method {
        "direct" => {
            let Holder::Dense(a) = &holder else {
                return Err(PyTypeError::new_err(
                    "the direct method needs a dense matrix",
                ));
            };
            let a = mat_ref(a);
            run(py, || lstsq::direct(a, b_view))
        }
        "sketch_solve" => {
            let (sa, sb) = (need(sa_view, method, "sa")?, need(sb_view, method, "sb")?);
            run(py, || lstsq::sketch_solve(op.as_ref(), b_view, sa, sb))
        }
        "sketch_precondition" => {
            let (sa, sb) = (need(sa_view, method, "sa")?, need(sb_view, method, "sb")?);
            run(py, || {
                lstsq::sketch_precondition(op.as_ref(), b_view, sa, sb, options)
            })
        }
        "sketch_precondition_wide" => {
            let sat = need(sa_view, method, "sa")?;
            run(py, || {
                lstsq::sketch_precondition_wide(op.as_ref(), b_view, sat, options)
            })
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown least squares method {other:?}"
            )))
        }
    };
    if let Some(err) = holder.take_error() {
        return Err(err);
    }
    let Solution {
        x,
        residual_norm,
        iterations,
        converged,
        rank,
        preconditioner,
    } = outcome?;
    Ok((
        to_numpy(py, &x).into_any(),
        residual_norm,
        iterations,
        converged,
        rank,
        preconditioner,
    ))
}

/// Least squares for `b` of shape (n, m); returns (x, residual_norm, iterations, converged, rank,
/// preconditioner).
/// `sa`/`sb` are the sketches `S A`, `S b` (`S A^T` for "sketch_precondition_wide").
#[pyfunction]
#[pyo3(signature = (method, a, b, sa=None, sb=None, *, rtol=1e-12, maxiter=1000))]
#[allow(clippy::too_many_arguments)]
fn lstsq_solve<'py>(
    py: Python<'py>,
    method: &str,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    sa: Option<&Bound<'py, PyAny>>,
    sb: Option<&Bound<'py, PyAny>>,
    rtol: f64,
    maxiter: usize,
) -> PyResult<Answer<'py>> {
    let options = PreconditionOptions { rtol, maxiter };
    by_float_dtype!(b, "b must be a float32 or float64 matrix", |T| {
        solve::<T>(py, method, a, b, sa, sb, options)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lstsq_solve, m)?)
}
