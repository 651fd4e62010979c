//! The error type of `ferry-deploy`.

/// What can go wrong while planning or applying redeploys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ferry annotation on a workload is malformed.
    #[error("{namespace}/{kind}/{name}: annotation {annotation}: {message}")]
    Annotation {
        /// Namespace.
        namespace: String,
        /// Workload kind.
        kind: String,
        /// Workload name.
        name: String,
        /// The annotation key.
        annotation: String,
        /// What is wrong.
        message: String,
    },
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The registry failed in a way that stops the whole pass.
    #[error(transparent)]
    Registry(#[from] ferry_registry::Error),
    /// Configuration (kubeconfig, flags) is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
