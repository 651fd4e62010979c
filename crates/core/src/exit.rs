//! Exit codes shared by every ferry binary.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | a negative answer: not found, platform missing, invalid reference, wait timed out, stale pins |
//! | 2 | usage error: bad flags or arguments |
//! | 3 | operational error: network, authentication, timeout, registry misbehaviour |
//!
//! A broken pipe on standard output counts as success: `ferry-registry tags x | head -1` is fine.

/// Everything asked for was done and the answer is positive.
pub const SUCCESS: u8 = 0;
/// The operation worked but the answer is negative (not found, missing platform, invalid input,
/// timed out waiting, stale pins).
pub const NEGATIVE: u8 = 1;
/// The command line could not be understood.
pub const USAGE: u8 = 2;
/// Something outside ferry failed: network, authentication, registry misbehaviour, IO.
pub const OPERATIONAL: u8 = 3;

/// How an error names its exit code. Each ferry library crate implements it for its error
/// type, so binaries map every error the same way without knowing the crate's variants.
pub trait Classify {
    /// One of [`NEGATIVE`] (the answer is no, or the input is bad) or [`OPERATIONAL`].
    fn exit_code(&self) -> u8;
}
