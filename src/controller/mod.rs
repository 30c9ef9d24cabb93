//! The CvmInstance controller: finalizer first, then create-or-observe, or delete.

pub mod conditions;
mod context;
pub mod credentials;
mod error;
pub mod events;
mod execute;
mod finalizer;
mod invalid;
pub mod observe;
pub mod request;
pub mod step;
pub mod sweep;
mod target;

pub use target::Managed;

pub use context::{Context, Settings};
pub use error::Error;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use futures::{Future, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use crate::api::CvmInstance;

/// What the watch holds: a CvmInstance, or why one could not be read (see `invalid`).
type Watched = DeserializeGuard<CvmInstance>;

/// Runs the controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    ctx: Arc<Context>,
    triggers: impl futures::Stream<Item = ObjectRef<CvmInstance>> + Send + 'static,
    watch_namespace: Option<&str>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = match watch_namespace {
        Some(namespace) => Api::<Watched>::namespaced(ctx.kube.clone(), namespace),
        None => Api::<Watched>::all(ctx.kube.clone()),
    };
    // managedFields are the largest part of a cached object and the controller never reads
    // them: drop them before they reach the cache.
    let (reader, writer) = kube::runtime::reflector::store();
    let metrics = ctx.metrics.clone();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|obj: &mut Watched| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut()
                .remove("kubectl.kubernetes.io/last-applied-configuration");
        })
        .reflect(writer)
        // Readiness (`/readyz`): the first complete list is in the cache. Not through
        // `Store::wait_until_ready`: its one-shot channel keeps only the last waiter's waker,
        // and the controller itself waits on it too.
        .inspect(move |event| {
            if let Ok(watcher::Event::InitDone) = event {
                metrics.set_watch_synced(true);
            }
        })
        .touched_objects()
        .predicate_filter(reconcile_inputs, Default::default());
    // The sweeper names CvmInstances; the controller keys its queue by the watched type.
    let triggers = triggers.map(|object| {
        let watched = ObjectRef::<Watched>::new(&object.name);
        match object.namespace {
            Some(namespace) => watched.within(&namespace),
            None => watched,
        }
    });
    Controller::for_stream(stream, reader)
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_watched, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "reconcile failed");
            }
        })
        .await;
    info!("controller stopped");
}

/// Reconciles what the watch delivered: a readable object, or one to report as unreadable.
async fn reconcile_watched(obj: Arc<Watched>, ctx: Arc<Context>) -> Result<Action, Error> {
    match &obj.0 {
        Ok(instance) => reconcile(Arc::new(instance.clone()), ctx).await,
        Err(invalid) => invalid::report(invalid, &ctx).await,
    }
}

pub async fn reconcile(obj: Arc<CvmInstance>, ctx: Arc<Context>) -> Result<Action, Error> {
    // The resource's name is `cvminstance`, not `name`: JSON logs already use `name` for
    // the span's own name, and a second `name` key would hide one of them.
    let span = info_span!(
        "reconcile",
        namespace = obj.namespace().unwrap_or_default(),
        cvminstance = obj.name_any(),
        instance_id = tracing::field::Empty,
    );
    if let Some(id) = obj.status.as_ref().and_then(|s| s.instance_id.as_deref()) {
        span.record("instance_id", id);
    }
    let started = Instant::now();
    let metrics = ctx.metrics.clone();
    let result = execute::execute(obj, &ctx).instrument(span).await;
    metrics.reconciled(result.is_ok(), started.elapsed());
    result
}

/// What a reconcile acts on: the spec (through the generation) and deletion. Our own status
/// writes come back as watch events; without this filter each one would start another
/// reconcile and another cloud call. Timers and the sweeper cover everything else.
fn reconcile_inputs(obj: &Watched) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    let meta = obj.meta();
    (
        meta.generation,
        meta.deletion_timestamp.is_some(),
        // A repaired object (the same generation if only its status was fixed) is read again.
        obj.0.is_ok(),
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn error_policy(obj: Arc<Watched>, error: &Error, ctx: Arc<Context>) -> Action {
    let instance_id = obj
        .0
        .as_ref()
        .ok()
        .and_then(|o| o.status.as_ref())
        .and_then(|s| s.instance_id.as_deref());
    warn!(
        namespace = obj.namespace().unwrap_or_default(),
        cvminstance = obj.name_any(),
        instance_id,
        error = %error,
        "reconcile error"
    );
    let s = &ctx.settings;
    let uid = obj.uid().unwrap_or_default();
    Action::requeue(ctx.backoff(&uid, s.poll_min, s.slow_retry_max))
}
