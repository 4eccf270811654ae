//! Runtime dispatch to code compiled for the best instruction set available.
//!
//! Kernels write plain loops that the compiler vectorizes; [`dispatch`]
//! compiles the closure's body (inlined) once per instruction set and picks
//! one at run time, so a portable build still runs AVX2 or AVX-512 code.
//! Rust never contracts `a * b + c` into a fused multiply-add on its own, and
//! an explicit `mul_add` is correctly rounded everywhere, so every variant
//! gives the same bits.

/// Runs `f` compiled for the best instruction set of this CPU.
#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the features were detected at run time.
            return unsafe { with_avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// A prefetch hint (a no-op where the architecture has none). Never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint and never dereferences or faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of `s`: for rows read a little later at
/// strides the hardware prefetchers do not follow (across pages).
#[inline(always)]
pub fn prefetch_slice<T>(s: &[T]) {
    let step = (64 / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..s.len()).step_by(step) {
        prefetch(&s[i]);
    }
    if let Some(last) = s.last() {
        prefetch(last);
    }
}
