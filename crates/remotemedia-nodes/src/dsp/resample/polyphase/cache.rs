//! The process-wide coefficient cache: each (rate pair, spec, precision) is designed once, on
//! first use, and its [`Bank`] shared by every stream that needs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::design::{design, Bank, FilterSpec};
use super::sample::PolySample;

type CacheKey = (u32, u32, u64, u64, u64, &'static str);

type AnyBank = Arc<dyn std::any::Any + Send + Sync>;

fn cache() -> &'static Mutex<HashMap<CacheKey, AnyBank>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, AnyBank>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The coefficient bank for this rate pair and spec, designed on first use and cached.
pub fn bank<T: PolySample>(rate_in: u32, rate_out: u32, spec: FilterSpec) -> Arc<Bank<T>> {
    let key: CacheKey = (
        rate_in,
        rate_out,
        spec.atten_db.to_bits(),
        spec.pass.to_bits(),
        spec.stop.to_bits(),
        std::any::type_name::<T>(),
    );
    let c = cache();
    if let Some(b) = c.lock().expect("cache lock").get(&key) {
        if let Ok(b) = Arc::clone(b).downcast::<Bank<T>>() {
            return b;
        }
    }
    let b = Arc::new(design::<T>(rate_in, rate_out, spec));
    c.lock()
        .expect("cache lock")
        .insert(key, Arc::clone(&b) as AnyBank);
    b
}

#[cfg(test)]
mod tests {
    use super::super::design::INTERP_PHASES;
    use super::super::tests::SPEC;
    use super::*;

    #[test]
    fn every_phase_has_unity_dc_gain_and_banks_are_cached() {
        let b = bank::<f64>(44_100, 16_000, SPEC);
        for row in b.coefs.chunks(b.taps) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(Arc::ptr_eq(&b, &bank::<f64>(44_100, 16_000, SPEC)));
        assert_eq!(b.taps % 8, 0);
        // Coprime: interpolated rows, bounded table.
        let c = bank::<f32>(48_000, 44_101, SPEC);
        assert!(c.interpolated && c.groups.is_none());
        assert_eq!(c.coefs.len(), (INTERP_PHASES + 1) * c.taps);
    }
}
