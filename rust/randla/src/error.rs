//! The core's error type: what a caller did wrong, or what failed numerically.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An argument that cannot hold (shape, size, parameter range, malformed sparse structure).
    InvalidArgument(String),
    /// A numerical failure (breakdown, matrix not positive definite).
    Numerical(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) | Error::Numerical(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Returns `Err(InvalidArgument)` with the formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !$cond {
            return Err($crate::Error::InvalidArgument(format!($($msg)+)));
        }
    };
}
