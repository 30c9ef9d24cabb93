//! Errors that end a reconcile early; the error policy requeues with backoff.
//!
//! Cloud errors are not here: they become conditions and Events on the resource.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the object has no {0}")]
    MissingObjectKey(&'static str),
    /// The step function asked for more steps than any path has: a step that does not
    /// change what the next one is decided from.
    #[error("the reconcile did not settle within {0} steps")]
    StepLimit(usize),
    /// The executor was asked for a step before the one it depends on.
    #[error("step out of order: {0}")]
    StepOrder(&'static str),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingObjectKey(_) => "object",
            Error::StepLimit(_) | Error::StepOrder(_) => "protocol",
        }
    }
}
