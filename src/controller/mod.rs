//! The CvmInstance controller: the protocol (`step`) and its executor (`execute`), the
//! pieces any kind can use (`target`: status and Events, `finalizer`, `credentials` and
//! `secret_use`: the credentials Secret held while needed,
//! `sweep`: bulk observation, `watch`: one shared watch per kind), and the wiring.

pub mod conditions;
mod context;
pub mod credentials;
mod error;
pub mod events;
mod execute;
pub mod finalizer;
mod invalid;
pub mod observe;
mod password;
pub mod price;
pub mod request;
mod secret_use;
pub mod step;
pub mod sweep;
mod target;
mod update;
mod watch;

pub use context::{Context, Settings};
pub use error::Error;
pub use target::Managed;
pub(crate) use target::PersistedToken;
pub use watch::{SharedWatch, Subscription};

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
pub type Watched = DeserializeGuard<CvmInstance>;

/// The CvmInstances of `namespace`, or of all namespaces, as the watch reads them.
pub fn watched_api(kube: &kube::Client, namespace: Option<&str>) -> Api<Watched> {
    match namespace {
        Some(namespace) => Api::namespaced(kube.clone(), namespace),
        None => Api::all(kube.clone()),
    }
}

/// Runs the controller with a watch of its own until `shutdown` completes; in-flight
/// reconciles finish first. `main` shares the watch instead (see [`run_shared`]).
pub async fn run(
    ctx: Arc<Context>,
    triggers: impl futures::Stream<Item = ObjectRef<CvmInstance>> + Send + 'static,
    watch_namespace: Option<&str>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let watch = SharedWatch::new(watched_api(&ctx.kube, watch_namespace));
    let metrics = ctx.metrics.clone();
    let controller = run_shared(ctx, watch.subscribe(), triggers, concurrency, shutdown);
    tokio::select! {
        () = watch.run(metrics) => {}
        () = controller => {}
    }
}

/// Runs the CvmInstance controller on a subscription to the shared CvmInstance watch, until
/// `shutdown` completes; in-flight reconciles finish first.
pub async fn run_shared(
    ctx: Arc<Context>,
    watched: Subscription<Watched>,
    triggers: impl futures::Stream<Item = ObjectRef<CvmInstance>> + Send + 'static,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // The filter needs owned objects; the cache keeps the shared one.
    let changed = watched
        .changed
        .map(|obj| Ok::<_, watcher::Error>(Watched::clone(&obj)))
        .predicate_filter(reconcile_inputs, Default::default())
        .filter_map(|obj| std::future::ready(obj.ok().map(Arc::new)));
    // The sweeper names CvmInstances; the controller keys its queue by the watched type.
    let triggers = triggers.map(|object| {
        let watched = ObjectRef::<Watched>::new(&object.name);
        match object.namespace {
            Some(namespace) => watched.within(&namespace),
            None => watched,
        }
    });
    Controller::for_shared_stream(changed, watched.cache)
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
