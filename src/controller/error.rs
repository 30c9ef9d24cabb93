//! Errors that end a reconcile early; the error policy requeues with backoff.
//!
//! Cloud errors are not here: they become conditions and Events on the resource.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the object has no {0}")]
    MissingObjectKey(&'static str),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingObjectKey(_) => "object",
        }
    }
}
