//! Borrowing numpy and scipy.sparse buffers as core views, without copies.

use faer::Mat;
use faer::{MatMut, MatRef};
use numpy::{
    Element, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use randla::sparse::{Compressed, Index, SparseRef};

/// A read-only strided view of a 2-D array (any strides, negative included).
pub fn mat_ref<'a, T: Element>(a: &'a PyReadonlyArray2<'_, T>) -> MatRef<'a, T> {
    let view = a.as_array();
    let (nrows, ncols) = view.dim();
    let strides = view.strides();
    // SAFETY: the view is borrowed for 'a; ndarray's pointer and element
    // strides address exactly the array's elements.
    unsafe { MatRef::from_raw_parts(view.as_ptr(), nrows, ncols, strides[0], strides[1]) }
}

/// A writable strided view of a 2-D array.
pub fn mat_mut<'a, T: Element>(a: &'a mut PyReadwriteArray2<'_, T>) -> MatMut<'a, T> {
    let mut view = a.as_array_mut();
    let (nrows, ncols) = view.dim();
    let (rs, cs) = (view.strides()[0], view.strides()[1]);
    // SAFETY: as above; numpy's borrow tracking guarantees exclusive access.
    unsafe { MatMut::from_raw_parts_mut(view.as_mut_ptr(), nrows, ncols, rs, cs) }
}

/// A contiguous 1-D array as a slice.
pub fn slice<'a, T: Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be contiguous")))
}

/// scipy's CSR or CSC arrays as a checked sparse view.
pub fn sparse_ref<'a, T: Element, I: Index + Element>(
    format: &str,
    shape: (usize, usize),
    indptr: &'a PyReadonlyArray1<'_, I>,
    indices: &'a PyReadonlyArray1<'_, I>,
    data: &'a PyReadonlyArray1<'_, T>,
) -> PyResult<SparseRef<'a, T, I>> {
    let (indptr, indices, data) = (
        slice(indptr, "indptr")?,
        slice(indices, "indices")?,
        slice(data, "data")?,
    );
    let err = |e: randla::Error| PyValueError::new_err(e.to_string());
    match format {
        "csr" => Ok(SparseRef::Csr(
            Compressed::new(shape.0, shape.1, indptr, indices, data).map_err(err)?,
        )),
        "csc" => Ok(SparseRef::Csc(
            Compressed::new(shape.1, shape.0, indptr, indices, data).map_err(err)?,
        )),
        other => Err(PyValueError::new_err(format!(
            "sparse format must be 'csr' or 'csc', got {other:?}"
        ))),
    }
}

/// A new C-order numpy array holding `m`.
pub fn to_numpy<'py, T: Element + Copy>(py: Python<'py>, m: &Mat<T>) -> Bound<'py, PyArray2<T>> {
    let out = PyArray2::<T>::zeros(py, [m.nrows(), m.ncols()], false);
    {
        let mut w = out.readwrite();
        let mut v = w.as_array_mut();
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                v[[i, j]] = m[(i, j)];
            }
        }
    }
    out
}

/// Runs `$body` with the type alias `$t` set to `f64` or `f32` after the dtype
/// of the 2-D array `$x` (of an array of any ndim with `dyn`); any other
/// dtype raises `TypeError($message)`.
macro_rules! by_float_dtype {
    (dyn $x:expr, $message:expr, |$t:ident| $body:expr) => {{
        if $x.extract::<numpy::PyReadonlyArrayDyn<f64>>().is_ok() {
            type $t = f64;
            $body
        } else if $x.extract::<numpy::PyReadonlyArrayDyn<f32>>().is_ok() {
            type $t = f32;
            $body
        } else {
            Err(pyo3::exceptions::PyTypeError::new_err($message))
        }
    }};
    ($x:expr, $message:expr, |$t:ident| $body:expr) => {{
        if $x.extract::<numpy::PyReadonlyArray2<f64>>().is_ok() {
            type $t = f64;
            $body
        } else if $x.extract::<numpy::PyReadonlyArray2<f32>>().is_ok() {
            type $t = f32;
            $body
        } else {
            Err(pyo3::exceptions::PyTypeError::new_err($message))
        }
    }};
}
pub(crate) use by_float_dtype;
