//! Krylov solvers: operator specifications from Python, the solve without the
//! GIL, and Python callables (operators, preconditioners, callbacks) called
//! back with the GIL taken only around each call.

use std::sync::Mutex;

use faer::{MatMut, MatRef};
use numpy::{Element, IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use randla::krylov::{
    self, DenseOperator, LeastSquaresOptions, Operator, Options, Output, Progress, SparseOperator,
};
use randla::Real;

use crate::convert::{by_float_dtype, mat_ref, sparse_ref};
use crate::error::run;

/// A Python exception raised inside a callable, kept until the solve returns.
type Stash = Mutex<Option<PyErr>>;

fn stash(slot: &Stash, e: PyErr) -> randla::Error {
    let message = e.to_string();
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    randla::Error::Numerical(format!("a Python callable raised: {message}"))
}

/// `y = f(x)` through a Python function taking and returning 2-D arrays; the
/// Python layer checks the shape and dtype of what it returns.
pub(crate) struct PyOperator {
    shape: (usize, usize),
    matmat: Py<PyAny>,
    rmatmat: Option<Py<PyAny>>,
    error: Stash,
}

impl PyOperator {
    fn call<T: Real + Element>(
        &self,
        f: &Py<PyAny>,
        x: MatRef<'_, T>,
        mut y: MatMut<'_, T>,
    ) -> randla::Result<()> {
        Python::attach(|py| {
            let input = PyArray2::<T>::zeros(py, [x.nrows(), x.ncols()], false);
            {
                let mut w = input.readwrite();
                let mut v = w.as_array_mut();
                for i in 0..x.nrows() {
                    for c in 0..x.ncols() {
                        v[[i, c]] = x[(i, c)];
                    }
                }
            }
            let result = f.call1(py, (input,)).map_err(|e| stash(&self.error, e))?;
            let array: PyReadonlyArray2<'_, T> =
                result.extract(py).map_err(|e| stash(&self.error, e))?;
            let v = array.as_array();
            if v.dim() != (y.nrows(), y.ncols()) {
                let e = PyValueError::new_err(format!(
                    "operator returned shape {:?}, expected {:?}",
                    v.dim(),
                    (y.nrows(), y.ncols())
                ));
                return Err(stash(&self.error, e));
            }
            for i in 0..y.nrows() {
                for c in 0..y.ncols() {
                    y[(i, c)] = v[[i, c]];
                }
            }
            Ok(())
        })
    }
}

impl<T: Real + Element> Operator<T> for PyOperator {
    fn shape(&self) -> (usize, usize) {
        self.shape
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> randla::Result<()> {
        self.call(&self.matmat, x, y)
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> randla::Result<()> {
        match &self.rmatmat {
            Some(f) => self.call(f, x, y),
            None => Err(stash(
                &self.error,
                PyTypeError::new_err("this operator has no rmatvec/rmatmat (A^T x is needed)"),
            )),
        }
    }
}

/// The borrowed inputs behind an operator specification (a tuple built by the
/// Python layer): ("dense", A), ("sparse", format, shape, indptr, indices,
/// data) or ("callable", shape, matmat, rmatmat).
pub(crate) enum Holder<'py, T: Element> {
    Dense(PyReadonlyArray2<'py, T>),
    Sparse32(
        String,
        (usize, usize),
        PyReadonlyArray1<'py, i32>,
        PyReadonlyArray1<'py, i32>,
        PyReadonlyArray1<'py, T>,
    ),
    Sparse64(
        String,
        (usize, usize),
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, T>,
    ),
    Callable(PyOperator),
}

impl<'py, T: Real + Element> Holder<'py, T> {
    pub(crate) fn new(spec: &Bound<'py, PyAny>) -> PyResult<Self> {
        let spec = spec.cast::<PyTuple>()?;
        let kind: String = spec.get_item(0)?.extract()?;
        Ok(match kind.as_str() {
            "dense" => Holder::Dense(spec.get_item(1)?.extract()?),
            "sparse" => {
                let format: String = spec.get_item(1)?.extract()?;
                let shape: (usize, usize) = spec.get_item(2)?.extract()?;
                let data = spec.get_item(5)?.extract()?;
                if let Ok(indptr) = spec.get_item(3)?.extract::<PyReadonlyArray1<'py, i32>>() {
                    Holder::Sparse32(format, shape, indptr, spec.get_item(4)?.extract()?, data)
                } else {
                    Holder::Sparse64(
                        format,
                        shape,
                        spec.get_item(3)?.extract()?,
                        spec.get_item(4)?.extract()?,
                        data,
                    )
                }
            }
            "callable" => {
                let rmatmat = spec.get_item(3)?;
                Holder::Callable(PyOperator {
                    shape: spec.get_item(1)?.extract()?,
                    matmat: spec.get_item(2)?.unbind(),
                    rmatmat: if rmatmat.is_none() {
                        None
                    } else {
                        Some(rmatmat.unbind())
                    },
                    error: Mutex::new(None),
                })
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown operator kind {other:?}"
                )))
            }
        })
    }

    pub(crate) fn operator(&self) -> PyResult<Box<dyn Operator<T> + '_>> {
        Ok(match self {
            Holder::Dense(a) => Box::new(DenseOperator(mat_ref(a))),
            Holder::Sparse32(f, shape, p, i, d) => {
                Box::new(SparseOperator::new(sparse_ref(f, *shape, p, i, d)?))
            }
            Holder::Sparse64(f, shape, p, i, d) => {
                Box::new(SparseOperator::new(sparse_ref(f, *shape, p, i, d)?))
            }
            Holder::Callable(op) => Box::new(PyOperatorRef(op)),
        })
    }

    pub(crate) fn take_error(&self) -> Option<PyErr> {
        match self {
            Holder::Callable(op) => op.error.lock().unwrap_or_else(|p| p.into_inner()).take(),
            _ => None,
        }
    }
}

/// A borrowed [`PyOperator`] (the holder keeps the owned one, for its error).
struct PyOperatorRef<'a>(&'a PyOperator);

impl<T: Real + Element> Operator<T> for PyOperatorRef<'_> {
    fn shape(&self) -> (usize, usize) {
        self.0.shape
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> randla::Result<()> {
        Operator::<T>::apply(self.0, x, y)
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> randla::Result<()> {
        Operator::<T>::apply_transpose(self.0, x, y)
    }
}

type Solution<'py> = (
    Bound<'py, PyAny>,
    Vec<bool>,
    Vec<usize>,
    Vec<f64>,
    Bound<'py, PyAny>,
    bool,
    Vec<i64>,
);

/// Which solver, with its options.
#[derive(Clone, Copy)]
enum Method {
    Cg(Options),
    Bicgstab(Options),
    Gmres(Options, usize, bool),
    Minres(Options, f64),
    Lsqr(LeastSquaresOptions),
    Lsmr(LeastSquaresOptions),
}

fn solve<'py, T: Real + Element>(
    py: Python<'py>,
    method: Method,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    x0: Option<&Bound<'py, PyAny>>,
    precond: Option<&Bound<'py, PyAny>>,
    callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<Solution<'py>> {
    let b: PyReadonlyArray2<'py, T> = b.extract()?;
    let m = b.as_array().ncols();
    let b_values = b
        .as_slice()
        .map_err(|_| PyValueError::new_err("b must be C-contiguous"))?;
    let x0: Option<PyReadonlyArray2<'py, T>> = x0.map(|x| x.extract()).transpose()?;
    let x0_values = match &x0 {
        Some(x) => Some(
            x.as_slice()
                .map_err(|_| PyValueError::new_err("x0 must be C-contiguous"))?,
        ),
        None => None,
    };
    let a_holder = Holder::<T>::new(a)?;
    let m_holder = precond.map(Holder::<T>::new).transpose()?;
    let a_op = a_holder.operator()?;
    let m_op = match &m_holder {
        Some(h) => Some(h.operator()?),
        None => None,
    };
    let callback_error: Stash = Mutex::new(None);
    let callback = callback.map(|c| c.clone().unbind());
    let mut progress_fn = |p: &Progress<'_, T>| -> randla::Result<bool> {
        let Some(cb) = &callback else {
            return Ok(false);
        };
        Python::attach(|py| {
            let x =
                p.x.to_vec()
                    .into_pyarray(py)
                    .reshape([p.x.len() / m, m])
                    .map_err(|e| stash(&callback_error, e))?;
            let norms = p.residual_norm.to_vec().into_pyarray(py);
            let answer = cb
                .call1(py, (p.iteration, x, norms))
                .map_err(|e| stash(&callback_error, e))?;
            answer.is_truthy(py).map_err(|e| stash(&callback_error, e))
        })
    };
    let outcome = run(py, || -> randla::Result<Output<T>> {
        let cb: Option<&mut krylov::Callback<'_, T>> = if callback.is_some() {
            Some(&mut progress_fn)
        } else {
            None
        };
        match method {
            Method::Cg(options) => krylov::cg(
                a_op.as_ref(),
                b_values,
                m,
                x0_values,
                m_op.as_deref(),
                options,
                cb,
            ),
            Method::Bicgstab(options) => krylov::bicgstab(
                a_op.as_ref(),
                b_values,
                m,
                x0_values,
                m_op.as_deref(),
                options,
                cb,
            ),
            Method::Gmres(options, restart, flexible) => krylov::gmres(
                a_op.as_ref(),
                b_values,
                m,
                x0_values,
                m_op.as_deref(),
                restart,
                flexible,
                options,
                cb,
            ),
            Method::Minres(options, shift) => krylov::minres(
                a_op.as_ref(),
                b_values,
                m,
                x0_values,
                m_op.as_deref(),
                shift,
                options,
                cb,
            ),
            Method::Lsqr(options) => {
                krylov::lsqr(a_op.as_ref(), b_values, m, x0_values, options, cb)
            }
            Method::Lsmr(options) => {
                krylov::lsmr(a_op.as_ref(), b_values, m, x0_values, options, cb)
            }
        }
    });
    // A Python exception raised in a callable wins over the core's summary of it.
    let raised = [
        a_holder.take_error(),
        m_holder.as_ref().and_then(|h| h.take_error()),
        callback_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
    ]
    .into_iter()
    .flatten()
    .next();
    if let Some(err) = raised {
        return Err(err);
    }
    let out = outcome?;
    let x_rows = out.x.len() / m;
    let x = out.x.into_pyarray(py).reshape([x_rows, m])?.into_any();
    let rows = out.history.len();
    let history: Vec<f64> = out.history.into_iter().flatten().collect();
    let history = history.into_pyarray(py).reshape([rows, m])?.into_any();
    Ok((
        x,
        out.converged,
        out.iterations,
        out.residual_norm,
        history,
        out.stopped,
        out.info,
    ))
}

/// Solves with a Krylov method; returns (x, converged, iterations, residual_norm, history, stopped, info).
/// `rtol` is CG's; `damp`, `btol` and `conlim` are LSQR's; `atol` serves both.
#[pyfunction]
#[pyo3(signature = (method, a, b, x0, precond, maxiter, callback, *, rtol=0.0, atol=0.0, damp=0.0, btol=0.0, conlim=0.0, restart=30, flexible=false, shift=0.0))]
#[allow(clippy::too_many_arguments)]
fn krylov_solve<'py>(
    py: Python<'py>,
    method: &str,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    x0: Option<&Bound<'py, PyAny>>,
    precond: Option<&Bound<'py, PyAny>>,
    maxiter: usize,
    callback: Option<&Bound<'py, PyAny>>,
    rtol: f64,
    atol: f64,
    damp: f64,
    btol: f64,
    conlim: f64,
    restart: usize,
    flexible: bool,
    shift: f64,
) -> PyResult<Solution<'py>> {
    let method = match method {
        "bicgstab" => Method::Bicgstab(Options {
            rtol,
            atol,
            maxiter,
        }),
        "gmres" => Method::Gmres(
            Options {
                rtol,
                atol,
                maxiter,
            },
            restart,
            flexible,
        ),
        "minres" => Method::Minres(
            Options {
                rtol,
                atol,
                maxiter,
            },
            shift,
        ),
        "cg" => Method::Cg(Options {
            rtol,
            atol,
            maxiter,
        }),
        "lsqr" | "lsmr" => {
            let options = LeastSquaresOptions {
                damp,
                atol,
                btol,
                conlim,
                maxiter,
            };
            if method == "lsqr" {
                Method::Lsqr(options)
            } else {
                Method::Lsmr(options)
            }
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown Krylov method {other:?}"
            )))
        }
    };
    by_float_dtype!(b, "b must be a float32 or float64 matrix", |T| {
        solve::<T>(py, method, a, b, x0, precond, callback)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(krylov_solve, m)?)
}
