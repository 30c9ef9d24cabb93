//! N CvmInstances: created at once through the kube API, followed with a watch until they
//! are Ready or gone, and deleted at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cvm_operator::api::{CvmInstance, CvmInstanceSet};
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use crate::support::wait_for;

/// Requests the benchmark keeps in flight against the API server while creating.
const CREATE_CONCURRENCY: usize = 32;

/// Which billing modes the fleet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// Every instance pay-as-you-go.
    PayAsYouGo,
    /// Every other instance spot (without a bid): TerminateInstances may not mix the two in
    /// one call, which is what this mode exercises.
    Mixed,
}

impl Billing {
    pub fn parse(text: &str) -> Self {
        match text {
            "payg" => Self::PayAsYouGo,
            "mixed" => Self::Mixed,
            other => panic!("--billing takes payg and/or mixed, not {other}"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::PayAsYouGo => "payg",
            Self::Mixed => "mixed",
        }
    }

    fn mode_of(self, index: usize) -> &'static str {
        match self {
            Self::Mixed if index % 2 == 1 => "Spot",
            _ => "PayAsYouGo",
        }
    }
}

/// How the fleet is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// N CvmInstances.
    Single,
    /// One CvmInstanceSet of N replicas, scaled to 0 at the end.
    Set,
}

impl Shape {
    pub fn parse(text: &str) -> Self {
        match text {
            "single" => Self::Single,
            "set" => Self::Set,
            other => panic!("--shape takes single and/or set, not {other}"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Set => "set",
        }
    }
}

/// The instance spec: a public IP, so Ready waits for boot and IP.
fn spec(billing_mode: &str) -> serde_json::Value {
    json!({
        "region": "ap-guangzhou",
        "zone": "ap-guangzhou-3",
        "instanceType": "S5.MEDIUM2",
        "imageId": "img-eb30mz89",
        "billing": {"mode": billing_mode},
        "network": {
            "securityGroupIds": ["sg-5t6u7v8w"],
            "publicIp": {"maxBandwidthOutMbps": 10}
        },
        "login": {"keyIds": ["skey-3x4y5z6a"]},
        "tags": {"bench": "scale"},
        "deletionPolicy": "Delete"
    })
}

fn manifest(name: &str, billing_mode: &str) -> CvmInstance {
    serde_json::from_value(json!({
        "apiVersion": "cvm-operator.io/v1alpha1",
        "kind": "CvmInstance",
        "metadata": {"name": name},
        "spec": spec(billing_mode)
    }))
    .expect("the benchmark manifest is a valid CvmInstance")
}

pub const SET: &str = "bench";

/// The name of set `index` of a run: `bench`, then `bench-1`, `bench-2`...
pub fn set_name(index: usize) -> String {
    if index == 0 {
        SET.to_string()
    } else {
        format!("{SET}-{index}")
    }
}

/// `sets` CvmInstanceSets of `n` each, created one after the other (as fast as the API
/// server answers).
pub async fn create_sets(api: &Api<CvmInstanceSet>, sets: usize, n: usize, billing: Billing) {
    for index in 0..sets {
        create_set(api, &set_name(index), n, billing).await;
    }
}

/// Waits until the operator has reconciled every set of the run at its current generation
/// (`status.observedGeneration`), for at most `patience` each: a set scaled after that is
/// "scaled from 0" with the operator already settled, as the issue measures it.
pub async fn wait_sets_observed(api: &Api<CvmInstanceSet>, sets: usize, patience: Duration) {
    for index in 0..sets {
        let name = set_name(index);
        wait_for(
            &format!("the operator to reconcile {name}"),
            patience,
            || async {
                let set = api.get(&name).await.ok()?;
                let observed = set.status.as_ref().and_then(|s| s.observed_generation)?;
                (Some(observed) == set.metadata.generation).then_some(())
            },
        )
        .await;
    }
}

/// Scales every set of the run to `replicas`.
pub async fn scale_sets(api: &Api<CvmInstanceSet>, sets: usize, replicas: usize) {
    for index in 0..sets {
        scale_set(api, &set_name(index), replicas).await;
    }
}

/// One CvmInstanceSet of `n`: pay-as-you-go, or (mixed) half spot by its capacity split.
pub async fn create_set(api: &Api<CvmInstanceSet>, name: &str, n: usize, billing: Billing) {
    let (mode, on_demand_percent) = match billing {
        Billing::PayAsYouGo => ("PayAsYouGo", 0),
        Billing::Mixed => ("Spot", 50),
    };
    let mut template = spec(mode);
    template["deletionPolicy"] = serde_json::Value::Null;
    let set: CvmInstanceSet = serde_json::from_value(json!({
        "apiVersion": "cvm-operator.io/v1alpha1",
        "kind": "CvmInstanceSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": n,
            "template": {"spec": template},
            "capacity": {"onDemandPercentageAboveBase": on_demand_percent}
        }
    }))
    .expect("the benchmark set is a valid CvmInstanceSet");
    api.create(&PostParams::default(), &set)
        .await
        .expect("create the set");
}

/// `kubectl scale` to `replicas`.
pub async fn scale_set(api: &Api<CvmInstanceSet>, name: &str, replicas: usize) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scale the set");
}

/// Creates `n` CvmInstances named `bench-0..n`, many requests at a time.
pub async fn create_all(api: &Api<CvmInstance>, n: usize, billing: Billing) {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let obj = manifest(&format!("bench-{i}"), billing.mode_of(i));
                api.create(&PostParams::default(), &obj)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("create bench-{i}: {e}"))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Deletes every CvmInstance of the namespace with deletecollection. With 10,000 objects the
/// API server can exceed its 60 s request timeout part way; what it marked stays marked, so
/// the request is repeated for the rest.
pub async fn delete_all(api: &Api<CvmInstance>) {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        match api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
        {
            Ok(_) => return,
            Err(e) if attempt < ATTEMPTS => {
                eprintln!("    deletecollection attempt {attempt} failed ({e}); repeating");
            }
            Err(e) => panic!("delete the CvmInstances: {e}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub present: usize,
    pub ready: usize,
    /// With an instance ID in the status (the child's first reconcile wrote it).
    pub observed: usize,
    /// Whose status says RUNNING (booted, maybe without its public IP yet).
    pub running: usize,
    /// Being deleted (deletionTimestamp set).
    pub deleting: usize,
    /// Whose status says TERMINATING.
    pub terminating: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    ready: bool,
    observed: bool,
    running: bool,
    deleting: bool,
    terminating: bool,
}

impl Seen {
    fn of(obj: &CvmInstance) -> Self {
        let state = obj
            .status
            .as_ref()
            .and_then(|s| s.instance_state.as_deref());
        Seen {
            ready: is_ready(obj),
            observed: obj.status.as_ref().is_some_and(|s| s.instance_id.is_some()),
            running: state == Some("RUNNING"),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            terminating: state == Some("TERMINATING"),
        }
    }
}

fn count(seen: &HashMap<String, Seen>) -> Counts {
    let n = |f: fn(&Seen) -> bool| seen.values().filter(|s| f(s)).count();
    Counts {
        present: seen.len(),
        ready: n(|s| s.ready),
        observed: n(|s| s.observed),
        running: n(|s| s.running),
        deleting: n(|s| s.deleting),
        terminating: n(|s| s.terminating),
    }
}

/// Counts the namespace's CvmInstances, and how many are Ready, from a watch; keeps every
/// change of the counts with its time, so a phase can be cut into milestones afterwards.
pub struct Tracker {
    counts: watch::Receiver<Counts>,
    history: Arc<Mutex<Vec<(Instant, Counts)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    pub fn start(api: Api<CvmInstance>) -> Tracker {
        let (tx, counts) = watch::channel(Counts::default());
        let history = Arc::new(Mutex::new(Vec::new()));
        let log = history.clone();
        let task = tokio::spawn(async move {
            let mut ready: HashMap<String, Seen> = HashMap::new();
            let mut events =
                std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                        ready.insert(obj.name_any(), Seen::of(&obj));
                    }
                    Ok(watcher::Event::Delete(obj)) => {
                        ready.remove(&obj.name_any());
                    }
                    Ok(watcher::Event::Init) => ready.clear(),
                    Ok(watcher::Event::InitDone) | Err(_) => {}
                }
                let counts = count(&ready);
                let mut history = log.lock().expect("tracker history");
                if history.last().is_none_or(|(_, last)| *last != counts) {
                    history.push((Instant::now(), counts));
                }
                drop(history);
                let _ = tx.send(counts);
            }
        });
        Tracker {
            counts,
            history,
            task,
        }
    }

    /// Seconds from `since` until the counts first met each milestone (after `since`), as
    /// `name t` pairs; a milestone never met is left out.
    pub fn milestones(&self, since: Instant, wanted: &[(&str, &dyn Fn(Counts) -> bool)]) -> String {
        let history = self.history.lock().expect("tracker history");
        wanted
            .iter()
            .filter_map(|(name, met)| {
                history
                    .iter()
                    .filter(|(at, _)| *at >= since)
                    .find(|(_, c)| met(*c))
                    .map(|(at, _)| format!("{name} {:.1}", (*at - since).as_secs_f64()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits until `done` holds and returns the time since `started`; prints progress every
    /// 10 s; `None` once `timeout` has passed since `started`.
    pub async fn wait(
        &mut self,
        what: &str,
        started: Instant,
        timeout: Duration,
        done: impl Fn(Counts) -> bool,
    ) -> Option<Duration> {
        let deadline = started + timeout;
        let mut next_report = Instant::now() + Duration::from_secs(10);
        loop {
            let counts = *self.counts.borrow_and_update();
            if done(counts) {
                return Some(started.elapsed());
            }
            let now = Instant::now();
            if now >= deadline {
                eprintln!("    gave up waiting for {what} after {timeout:?}: {counts:?}");
                return None;
            }
            if now >= next_report {
                eprintln!(
                    "    {:>5.0}s  {what}: {} present, {} Ready",
                    started.elapsed().as_secs_f64(),
                    counts.present,
                    counts.ready
                );
                next_report += Duration::from_secs(10);
            }
            let wake = deadline.min(next_report);
            let _ = tokio::time::timeout_at(wake.into(), self.counts.changed()).await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_ready(obj: &CvmInstance) -> bool {
    obj.status
        .as_ref()
        .and_then(|s| s.condition("Ready"))
        .is_some_and(|c| c.status == "True")
}
