//! randla: randomized and structured numerical linear algebra.
//!
//! The pure-Rust core of the Python package `randla`: every numerical kernel
//! lives here, on faer views, with no Python in sight. Parallel work runs on
//! the pool of [`parallel`], with blockings that never depend on the thread
//! count, and randomness comes from the counter-based generator of [`rng`].

pub mod completion;
pub mod dpp;
pub mod error;
pub mod factor;
pub mod krylov;
pub mod lowrank;
pub mod lstsq;
pub mod parallel;
pub mod rng;
pub mod sampling;
pub mod simd;
pub mod sketch;
pub mod sparse;
pub mod structured;

pub use error::{Error, Result};

/// Deterministic test data shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A uniform value in [-1/2, 1/2) from a 64-bit LCG (Knuth's MMIX
    /// constants), advancing `seed`.
    pub fn uniform(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
    }
}

/// The unit roundoff of `T` (numpy's `finfo(dtype).eps`).
pub(crate) fn epsilon<T>() -> f64 {
    if std::mem::size_of::<T>() == 4 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

/// The real floating-point types the kernels run on: `f32` and `f64`.
pub trait Real:
    faer::traits::RealField
    + Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn is_finite_value(self) -> bool;
    /// `self * a + b` with one rounding (an FMA instruction inside
    /// [`simd::dispatch`]).
    fn mul_add(self, a: Self, b: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_finite_value(self) -> bool {
                self.is_finite()
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

/// A short description of the build: SIMD level detected at run time.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return "x86-64 AVX-512";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "x86-64 AVX2+FMA";
        }
        "x86-64 SSE2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "aarch64 NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}
