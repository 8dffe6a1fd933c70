//! `SampleBuf<T>`: an immutable, cheaply clonable sample buffer that either owns a `Vec<T>` or
//! borrows memory owned by a host (a numpy array, say) without copying it.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// Keeps a foreign allocation alive for as long as a [`SampleBuf`] points into it.
pub type ForeignOwner = Box<dyn Any + Send + Sync>;

enum Storage<T> {
    Owned(Vec<T>),
    Foreign {
        ptr: NonNull<T>,
        len: usize,
        owner: ForeignOwner,
    },
}

// SAFETY: `Foreign` is only built through `SampleBuf::from_foreign`, whose contract makes the
// pointed-to memory immutable and kept alive by `owner` (itself `Send + Sync`).
unsafe impl<T: Send + Sync> Send for Storage<T> {}
unsafe impl<T: Send + Sync> Sync for Storage<T> {}

/// Immutable samples shared by reference count: cloning never copies the samples.
///
/// Moving a buffer through a pipeline (pass-through, retries, fan-out) is O(1); turning it back
/// into a `Vec` is free when this is the only reference to an owned allocation.
pub struct SampleBuf<T> {
    inner: Arc<Storage<T>>,
}

impl<T> Clone for SampleBuf<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Send + Sync + Copy + 'static> SampleBuf<T> {
    /// Wraps an owned vector (no copy).
    pub fn from_vec(v: Vec<T>) -> Self {
        Self {
            inner: Arc::new(Storage::Owned(v)),
        }
    }

    /// Borrows `len` samples at `ptr`, kept alive by `owner`, without copying.
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `len` properly aligned, initialised `T`s for as long as
    /// `owner` lives, and nothing may write to that memory while this buffer (or a clone) exists.
    pub unsafe fn from_foreign(ptr: *const T, len: usize, owner: ForeignOwner) -> Self {
        let ptr = if len == 0 {
            NonNull::dangling()
        } else {
            NonNull::new(ptr as *mut T).expect("from_foreign: null pointer with non-zero length")
        };
        Self {
            inner: Arc::new(Storage::Foreign { ptr, len, owner }),
        }
    }

    /// The samples.
    pub fn as_slice(&self) -> &[T] {
        match &*self.inner {
            Storage::Owned(v) => v,
            // SAFETY: guaranteed by the `from_foreign` contract.
            Storage::Foreign { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }

    /// The host object that owns the memory, when this buffer borrows foreign memory.
    pub fn foreign_owner(&self) -> Option<&(dyn Any + Send + Sync)> {
        match &*self.inner {
            Storage::Owned(_) => None,
            Storage::Foreign { owner, .. } => Some(owner.as_ref()),
        }
    }

    /// Takes the allocation out without copying when this is the only reference to an owned
    /// vector; otherwise gives the buffer back unchanged.
    pub fn try_into_vec(self) -> Result<Vec<T>, Self> {
        match Arc::try_unwrap(self.inner) {
            Ok(Storage::Owned(v)) => Ok(v),
            Ok(other) => Err(Self {
                inner: Arc::new(other),
            }),
            Err(inner) => Err(Self { inner }),
        }
    }

    /// The samples as a vector: free when [`try_into_vec`](Self::try_into_vec) succeeds, a copy
    /// otherwise.
    pub fn into_vec(self) -> Vec<T> {
        self.try_into_vec()
            .unwrap_or_else(|buf| buf.as_slice().to_vec())
    }

    /// True when both buffers share the same storage (a clone, not a copy).
    pub fn shares_storage_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: Send + Sync + Copy + 'static> Deref for SampleBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Send + Sync + Copy + 'static> From<Vec<T>> for SampleBuf<T> {
    fn from(v: Vec<T>) -> Self {
        Self::from_vec(v)
    }
}

impl<T: Send + Sync + Copy + PartialEq + 'static> PartialEq for SampleBuf<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Send + Sync + Copy + 'static> fmt::Debug for SampleBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.inner {
            Storage::Owned(_) => "owned",
            Storage::Foreign { .. } => "foreign",
        };
        write!(
            f,
            "SampleBuf<{}>({} samples, {kind})",
            std::any::type_name::<T>(),
            self.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_shares_and_unique_owner_gets_vec_back_without_copy() {
        let v = vec![1.0f32, 2.0, 3.0];
        let ptr = v.as_ptr();
        let a = SampleBuf::from_vec(v);
        let b = a.clone();
        assert!(a.shares_storage_with(&b));
        let a = a
            .try_into_vec()
            .expect_err("two references: must not give the vec away");
        drop(b);
        let v = a
            .try_into_vec()
            .expect("unique owner gets the allocation back");
        assert_eq!(v.as_ptr(), ptr);
    }

    #[test]
    fn foreign_memory_is_borrowed_and_kept_alive() {
        let backing: Arc<Vec<i16>> = Arc::new(vec![5, 6, 7]);
        let ptr = backing.as_ptr();
        let buf = unsafe { SampleBuf::from_foreign(ptr, 3, Box::new(Arc::clone(&backing))) };
        drop(backing);
        assert_eq!(buf.as_ptr(), ptr);
        assert_eq!(&*buf, &[5, 6, 7]);
        assert!(buf.foreign_owner().is_some());
        let copy = buf.into_vec();
        assert_eq!(copy, vec![5, 6, 7]);
    }
}
