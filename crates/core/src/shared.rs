//! [`Shared`]: a value (usually another crate's error) kept by several owners and compared by
//! what it says. Reasons, problems and report records hold the typed error itself instead of its
//! text; many of those errors are neither `Clone` nor `PartialEq`, and the records must be both.
//!
//! ```
//! use ferry_core::Shared;
//!
//! let a = Shared::new(std::io::Error::other("refused"));
//! assert_eq!(a.clone(), a);
//! assert_eq!(a, Shared::new(std::io::Error::other("refused")), "same words, equal");
//! let any: Shared<dyn std::error::Error + Send + Sync> = Shared::from(std::io::Error::other("x"));
//! assert_eq!(any.to_string(), "x");
//! ```

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A shared value, rendered by its `Display`. Two are equal when they are the same value or read
/// the same.
pub struct Shared<E: ?Sized>(Arc<E>);

impl<E> Shared<E> {
    /// Share `value`.
    pub fn new(value: E) -> Self {
        Shared(Arc::new(value))
    }
}

impl<E: ?Sized> Shared<E> {
    /// Share a value already behind an `Arc` (no copy).
    pub fn from_arc(value: Arc<E>) -> Self {
        Shared(value)
    }

    /// The value.
    pub fn get(&self) -> &E {
        &self.0
    }
}

impl<T: std::error::Error + Send + Sync + 'static> From<T>
    for Shared<dyn std::error::Error + Send + Sync>
{
    /// Any error, its type erased (a core that must not know the shell's error types).
    fn from(error: T) -> Self {
        Shared(Arc::new(error))
    }
}

impl<E: ?Sized> Clone for Shared<E> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<E: ?Sized> Deref for Shared<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.0
    }
}

impl<E: ?Sized + fmt::Debug> fmt::Debug for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: ?Sized + fmt::Display> fmt::Display for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: ?Sized + fmt::Display> PartialEq for Shared<E> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl<E: ?Sized + fmt::Display> Eq for Shared<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_or_the_same_words_are_equal_other_words_are_not() {
        let a = Shared::new(std::io::Error::other("one"));
        assert_eq!(a, a.clone());
        assert_eq!(a, Shared::new(std::io::Error::other("one")));
        assert_ne!(a, Shared::new(std::io::Error::other("two")));
        let erased: Shared<dyn std::error::Error + Send + Sync> =
            Shared::from(std::io::Error::other("one"));
        assert_eq!(erased.to_string(), a.to_string());
        assert_eq!(
            format!("{a:?}"),
            format!("{:?}", std::io::Error::other("one"))
        );
    }
}
