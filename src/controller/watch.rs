//! One watch and one cache per kind, shared by every controller that reads the kind.
//!
//! A controller that owns many instances (a set) and the one for single instances will both
//! read `CvmInstance`s; two watches would double the API server's load and the operator's
//! memory. Subscribe every controller first, then drive the watch with [`SharedWatch::run`].

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, ReflectHandle, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// How many changed objects may wait for the slowest subscriber before the watch waits too.
const SUBSCRIBER_BUFFER: usize = 1024;

pub struct SharedWatch<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    api: Api<K>,
    reader: Store<K>,
    writer: Writer<K>,
}

/// What one controller reads from a [`SharedWatch`]: the objects that changed, and the cache.
pub struct Subscription<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    pub changed: ReflectHandle<K>,
    pub cache: Store<K>,
}

impl<K> SharedWatch<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(api: Api<K>) -> Self {
        let (reader, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        Self {
            api,
            reader,
            writer,
        }
    }

    pub fn subscribe(&self) -> Subscription<K> {
        Subscription {
            changed: self
                .writer
                .subscribe()
                .expect("a shared store always has subscribers"),
            cache: self.reader.clone(),
        }
    }

    /// Watches until the process ends. `metrics` learn when the first complete list is in
    /// the cache (`/readyz`).
    pub async fn run(self, metrics: Arc<Metrics>) {
        watcher(self.api, watcher::Config::default().any_semantic())
            .default_backoff()
            // managedFields are the largest part of a cached object and the controllers never
            // read them: drop them before they reach the cache.
            .modify(|obj: &mut K| {
                obj.managed_fields_mut().clear();
                obj.annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
            })
            .reflect_shared(self.writer)
            // Readiness (`/readyz`): the first complete list is in the cache. Not through
            // `Store::wait_until_ready`: its one-shot channel keeps only the last waiter's
            // waker, and the controllers wait on it too.
            .for_each(|event| {
                if let Ok(watcher::Event::InitDone) = event {
                    metrics.set_watch_synced(true);
                }
                async {}
            })
            .await;
    }
}
