//! `randla._core`: the Python extension module.
//!
//! This crate only translates: it borrows numpy buffers as faer views,
//! releases the GIL around every kernel, contains panics and maps errors.
//! The numerics live in the `randla` crate; validation and documentation in
//! the Python package.

mod completion;
mod config;
mod convert;
mod dpp;
mod error;
mod krylov;
mod lowrank;
mod lstsq;
mod rng;
mod sampling;
mod sketch;
mod structured;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    config::register(m)?;
    sketch::register(m)?;
    rng::register(m)?;
    krylov::register(m)?;
    lstsq::register(m)?;
    lowrank::register(m)?;
    sampling::register(m)?;
    dpp::register(m)?;
    completion::register(m)?;
    structured::register(m)?;
    Ok(())
}
