//! Crash injection: one switch per operator "process", shared by its kube client and its
//! cloud. Every effect (a write to a CvmInstance, or a cloud call that creates or destroys)
//! is numbered; at effect `n` the process dies either before the effect is sent or after it
//! took effect but before its answer arrived. From then on every request of that process
//! fails, as if it had been killed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use hyper::{Method, Request, Response};
use kube::client::Body;
use tower::{BoxError, Layer, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The effect is never sent.
    Before,
    /// The effect happens; its answer is lost.
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Proceed,
    /// Go ahead, then fail as if the answer was lost.
    CrashAfter,
    /// Fail without sending.
    CrashBefore,
    /// The process is already dead.
    Dead,
}

#[derive(Debug)]
pub struct CrashSwitch {
    effects: AtomicUsize,
    crash_at: Option<(usize, When)>,
    dead: AtomicBool,
    /// What each effect was, in order.
    log: Mutex<Vec<String>>,
}

impl CrashSwitch {
    /// A process that never crashes; it still counts its effects.
    pub fn never() -> Self {
        Self {
            effects: AtomicUsize::new(0),
            crash_at: None,
            dead: AtomicBool::new(false),
            log: Mutex::default(),
        }
    }

    /// A process that dies at its `n`-th effect (from 1).
    pub fn at(n: usize, when: When) -> Self {
        Self {
            crash_at: Some((n, when)),
            ..Self::never()
        }
    }

    pub fn effects(&self) -> usize {
        self.effects.load(Ordering::SeqCst)
    }

    /// The effects made so far, named.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn crashed(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Decides the fate of one request; `effect` names it when it counts as an effect.
    pub fn gate(&self, effect: Option<&str>) -> Gate {
        if self.crashed() {
            return Gate::Dead;
        }
        let Some(effect) = effect else {
            return Gate::Proceed;
        };
        self.log.lock().unwrap().push(effect.to_string());
        let n = self.effects.fetch_add(1, Ordering::SeqCst) + 1;
        match self.crash_at {
            Some((at, when)) if at == n => {
                self.dead.store(true, Ordering::SeqCst);
                match when {
                    When::Before => Gate::CrashBefore,
                    When::After => Gate::CrashAfter,
                }
            }
            _ => Gate::Proceed,
        }
    }
}

/// Puts a [`CrashSwitch`] in front of a kube client's HTTP stack. Writes to cvminstances
/// (the finalizer and status patches) and to Secrets (the in-use finalizer) are the effects
/// that count.
#[derive(Clone)]
pub struct CrashLayer(pub Arc<CrashSwitch>);

impl<S> Layer<S> for CrashLayer {
    type Service = CrashService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CrashService {
            inner,
            switch: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CrashService<S> {
    inner: S,
    switch: Arc<CrashSwitch>,
}

impl<S, B> Service<Request<Body>> for CrashService<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let what = format!(
            "{} {}",
            request.method(),
            path.rsplit_once("/cvminstances/")
                .map_or(path, |(_, rest)| rest)
        );
        // The credentials Secret's in-use finalizer is written too: its writes are effects.
        let effect = request.method() != Method::GET
            && (path.contains("/cvminstances") || path.contains("/secrets/"));
        match self.switch.gate(effect.then_some(what.as_str())) {
            Gate::Dead | Gate::CrashBefore => {
                Box::pin(async move { Err(format!("{what}: the operator process crashed").into()) })
            }
            gate => {
                let sent = self.inner.call(request);
                Box::pin(async move {
                    let response = sent.await.map_err(Into::into)?;
                    if gate == Gate::CrashAfter {
                        return Err(format!(
                            "{what}: the operator process crashed before the answer"
                        )
                        .into());
                    }
                    Ok(response)
                })
            }
        }
    }
}
