//! Errors cross into Python in one place: core errors become the documented
//! exceptions, and a panic becomes `randla.RandlaInternalError`, never an abort.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

fn randla_exception(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = py.import("randla._errors").and_then(|m| m.getattr(name));
    match class {
        Ok(class) => match class.call1((PyString::new(py, &message),)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        Err(_) => PyRuntimeError::new_err(message),
    }
}

pub fn to_py(py: Python<'_>, e: randla::Error) -> PyErr {
    match e {
        randla::Error::InvalidArgument(m) => PyValueError::new_err(m),
        randla::Error::Numerical(m) => randla_exception(py, "LinAlgError", m),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` without the GIL, catching panics.
pub fn run<R: Send>(py: Python<'_>, f: impl FnOnce() -> randla::Result<R> + Send) -> PyResult<R> {
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(to_py(py, e)),
        Err(payload) => Err(randla_exception(
            py,
            "RandlaInternalError",
            format!(
                "internal error in randla's Rust core (please report it): {}",
                panic_message(payload)
            ),
        )),
    }
}
