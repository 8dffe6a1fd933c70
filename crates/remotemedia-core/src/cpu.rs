//! The CPU features the SIMD kernels need, asked in one place. Each kernel's choice is made
//! here, so a process never mixes paths, and a port to another instruction set has one file
//! to extend. std caches the detection: a call is one relaxed load.

/// Whether this CPU has AVX2 (x86-64 only; `false` elsewhere).
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU has AVX2 and FMA (x86-64 only; `false` elsewhere).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
