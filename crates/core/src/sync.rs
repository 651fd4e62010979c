//! A mutex that cannot poison, for the shared caches of ferry's long-lived values (the registry
//! client's maps, ferry-deploy's GitHub App tokens).
//!
//! Use it where every critical section is one map operation (get, insert, remove, retain with
//! a closure that cannot panic), so a panic elsewhere while a guard was held cannot leave the
//! data half-updated: the data behind a poisoned lock is as good as before. A controller that
//! shares one client across tasks must not turn one panicked task into a panic in every later
//! request, so `lock` takes the data back from a poisoned mutex instead of panicking.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A [`Mutex`] whose [`Lock::lock`] never fails.
#[derive(Debug, Default)]
pub struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    /// A lock around `value`.
    pub fn new(value: T) -> Lock<T> {
        Lock(Mutex::new(value))
    }

    /// The guarded data, also after a panic while another guard was held.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a guard was dropped by a panic (the data is still handed out).
    pub fn is_poisoned(&self) -> bool {
        self.0.is_poisoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_hands_out_its_data() {
        let lock = Lock(Mutex::new(vec![1]));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut g = lock.lock();
            g.push(2);
            panic!("a task panicked while holding the lock");
        }));
        assert!(panicked.is_err());
        assert!(lock.is_poisoned());
        lock.lock().push(3);
        assert_eq!(*lock.lock(), vec![1, 2, 3]);
    }
}
