//! The CvmInstanceSet controller: a pure planner (`plan`, table tests in `plan_table.rs`),
//! the launch record and request (`launch`), the children (`children`), and the executor
//! (`reconcile`). Children are CvmInstances that adopt what the set launched; the
//! CvmInstance controller follows, updates and terminates them as any other.

pub mod children;
pub mod follow;
pub mod launch;
pub mod plan;
pub mod reconcile;
pub mod writes;

use std::sync::Arc;
use std::time::Duration;

use futures::{Future, StreamExt};
use kube::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::CvmInstanceSet;
use crate::controller::{Context, Error, Subscription, Watched};

/// The CvmInstanceSets of `namespace`, or of all namespaces.
pub fn watched_api(kube: &kube::Client, namespace: Option<&str>) -> Api<CvmInstanceSet> {
    match namespace {
        Some(namespace) => Api::namespaced(kube.clone(), namespace),
        None => Api::all(kube.clone()),
    }
}

/// Runs the set controller until `shutdown`, woken by its sets and by changes of their
/// children (from the CvmInstance watch it shares with the CvmInstance controller).
pub async fn run(
    ctx: Arc<Context>,
    sets: Api<CvmInstanceSet>,
    children: Subscription<Watched>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // A burst of child changes (a batch turning Ready) becomes one reconcile of the set.
    let config = controller::Config::default()
        .concurrency(concurrency)
        .debounce(Duration::from_millis(500));
    Controller::new(sets, watcher::Config::default().any_semantic())
        .owns_shared_stream(children.changed)
        .with_config(config)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "set reconcile failed");
            }
        })
        .await;
    info!("set controller stopped");
}

fn error_policy(set: Arc<CvmInstanceSet>, error: &Error, ctx: Arc<Context>) -> Action {
    // A conflict is the write-ahead log's precondition at work: start over from fresh data.
    let conflict = matches!(error, Error::Kube(kube::Error::Api(e)) if e.code == 409);
    if !conflict {
        warn!(
            namespace = set.namespace().unwrap_or_default(),
            cvminstanceset = set.name_any(),
            error = %error,
            "set reconcile error"
        );
    }
    let s = &ctx.settings;
    let uid = set.meta().uid.clone().unwrap_or_default();
    if conflict {
        return Action::requeue(Duration::from_millis(200));
    }
    Action::requeue(ctx.backoff(&uid, s.poll_min, s.slow_retry_max))
}
