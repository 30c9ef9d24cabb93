//! Prometheus metrics of the operator, exposed at `/metrics` (see `http`).
//!
//! One [`Metrics`] per process, shared by the controller (reconciles, instance states), the
//! CVM client (as its [`ApiObserver`]: calls and rate-limit waits) and the leader election.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use tencent_cloud::config::ApiObserver;

/// The prefix of every metric name.
pub const PREFIX: &str = "cvm_operator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    pub action: String,
    /// `Success` or the Tencent error code (`ClientError.*` for failures on our side).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The CVM instance state, verbatim (`PENDING`, `RUNNING`, ...).
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    pub namespace: String,
    /// `PayAsYouGo` or `Spot`.
    pub billing: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Prices in millionths, so that adding and removing one instance's price leaves no
/// floating-point residue in a sum that lives as long as the process.
type Micros = i64;

/// Each billed resource's contribution to the spend gauge, and the sums by label.
#[derive(Default)]
struct Spend {
    by_uid: HashMap<String, (SpendLabels, Micros)>,
    totals: HashMap<SpendLabels, Micros>,
}

pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    api_calls: Family<ApiCallLabels, Counter>,
    api_call_duration: HistogramFamily<ActionLabels>,
    rate_limit_waits: Family<ActionLabels, Counter>,
    rate_limit_wait_seconds: Family<ActionLabels, Counter<f64>>,
    instances: Family<StateLabels, Gauge>,
    /// The state last written for each resource UID; the `instances` gauge is derived from
    /// it, so that a state change moves one instance from one series to the other.
    instance_states: Mutex<HashMap<String, String>>,
    hourly_spend: Family<SpendLabels, Gauge<f64, AtomicU64>>,
    spend: Mutex<Spend>,
    leader: Gauge,
    watch_synced: Gauge,
}

impl Default for Metrics {
    /// Metrics that count but are not exported (e.g. in unit tests).
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            api_calls: Family::default(),
            api_call_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            instances: Family::default(),
            instance_states: Mutex::new(HashMap::new()),
            hourly_spend: Family::default(),
            spend: Mutex::new(Spend::default()),
            leader: Gauge::default(),
            watch_synced: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` (use one with [`PREFIX`]).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "reconciles",
            "Reconciles of CvmInstances by result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile of a CvmInstance took",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "cloud_api_calls",
            "HTTP attempts to the CVM API by action and outcome (Success or the error code)",
            metrics.api_calls.clone(),
        );
        registry.register(
            "cloud_api_call_duration_seconds",
            "Time one HTTP attempt to the CVM API took, by action",
            metrics.api_call_duration.clone(),
        );
        registry.register(
            "rate_limit_waits",
            "CVM API calls that waited for the action's rate limit before being sent",
            metrics.rate_limit_waits.clone(),
        );
        registry.register(
            "rate_limit_wait_seconds",
            "Total time CVM API calls waited for the action's rate limit",
            metrics.rate_limit_wait_seconds.clone(),
        );
        registry.register(
            "instances",
            "CvmInstances by the instance state last written to their status",
            metrics.instances.clone(),
        );
        registry.register(
            "hourly_spend",
            "What the instances the operator manages cost per hour (the sum of their status.hourlyPrice), by namespace and billing mode",
            metrics.hourly_spend.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and runs the controller, else 0",
            metrics.leader.clone(),
        );
        registry.register(
            "watch_synced",
            "1 once the controller's watch of CvmInstances has listed everything, else 0",
            metrics.watch_synced.clone(),
        );
        metrics
    }

    pub fn reconciled(&self, success: bool, elapsed: Duration) {
        let result = if success { "success" } else { "error" };
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Records the instance state written for the resource `uid`; `None` (no instance, or the
    /// resource is gone) stops counting it.
    pub fn instance_state(&self, uid: &str, state: Option<&str>) {
        let mut states = self
            .instance_states
            .lock()
            .expect("instance states poisoned");
        let previous = match state {
            Some(state) => states.insert(uid.to_string(), state.to_string()),
            None => states.remove(uid),
        };
        if previous.as_deref() == state {
            return;
        }
        if let Some(previous) = previous {
            self.instances
                .get_or_create(&StateLabels { state: previous })
                .dec();
        }
        if let Some(state) = state {
            self.instances
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .inc();
        }
    }

    /// Records what the resource `uid` costs per hour (`None`: nothing, e.g. stopped without
    /// charging or gone) and updates the sums of the labels it left and joined.
    pub fn hourly_spend(&self, uid: &str, spend: Option<(SpendLabels, f64)>) {
        let mut books = self.spend.lock().expect("spend poisoned");
        let spend = spend.map(|(labels, price)| (labels, (price * 1e6).round() as Micros));
        let previous = match &spend {
            Some(now) => books.by_uid.insert(uid.to_string(), now.clone()),
            None => books.by_uid.remove(uid),
        };
        if previous == spend {
            return;
        }
        let mut touched = Vec::with_capacity(2);
        if let Some((labels, micros)) = previous {
            *books.totals.entry(labels.clone()).or_default() -= micros;
            touched.push(labels);
        }
        if let Some((labels, micros)) = spend {
            *books.totals.entry(labels.clone()).or_default() += micros;
            touched.push(labels);
        }
        for labels in touched {
            let total = books.totals.get(&labels).copied().unwrap_or_default();
            self.hourly_spend
                .get_or_create(&labels)
                .set(total as f64 / 1e6);
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    pub fn set_watch_synced(&self, synced: bool) {
        self.watch_synced.set(i64::from(synced));
    }

    pub fn watch_synced(&self) -> bool {
        self.watch_synced.get() == 1
    }
}

impl ApiObserver for Metrics {
    fn api_call(&self, action: &str, outcome: &str, elapsed: Duration) {
        self.api_calls
            .get_or_create(&ApiCallLabels {
                action: action.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.api_call_duration
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn rate_limit_wait(&self, action: &str, waited: Duration) {
        let labels = ActionLabels {
            action: action.to_string(),
        };
        self.rate_limit_waits.get_or_create(&labels).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&labels)
            .inc_by(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn exported(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn instance_states_move_between_series_and_disappear_on_deletion() {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Metrics::register(&mut registry);
        metrics.instance_state("a", Some("PENDING"));
        metrics.instance_state("b", Some("PENDING"));
        metrics.instance_state("a", Some("RUNNING"));
        metrics.instance_state("a", Some("RUNNING"));
        let text = exported(&registry);
        assert!(
            text.contains("cvm_operator_instances{state=\"PENDING\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cvm_operator_instances{state=\"RUNNING\"} 1"),
            "{text}"
        );

        metrics.instance_state("a", None);
        metrics.instance_state("b", None);
        metrics.instance_state("never-seen", None);
        let text = exported(&registry);
        assert!(
            text.contains("cvm_operator_instances{state=\"PENDING\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("cvm_operator_instances{state=\"RUNNING\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn api_calls_and_waits_are_counted_by_action_and_outcome() {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Metrics::register(&mut registry);
        metrics.api_call("RunInstances", "Success", Duration::from_millis(20));
        metrics.api_call(
            "RunInstances",
            "ResourceInsufficient",
            Duration::from_millis(20),
        );
        metrics.api_call("RunInstances", "Success", Duration::from_millis(20));
        metrics.rate_limit_wait("DescribeInstances", Duration::from_millis(500));
        metrics.reconciled(true, Duration::from_millis(30));
        metrics.set_leader(true);
        let text = exported(&registry);
        for line in [
            "cvm_operator_cloud_api_calls_total{action=\"RunInstances\",outcome=\"Success\"} 2",
            "cvm_operator_cloud_api_calls_total{action=\"RunInstances\",outcome=\"ResourceInsufficient\"} 1",
            "cvm_operator_rate_limit_waits_total{action=\"DescribeInstances\"} 1",
            "cvm_operator_rate_limit_wait_seconds_total{action=\"DescribeInstances\"} 0.5",
            "cvm_operator_reconciles_total{result=\"success\"} 1",
            "cvm_operator_reconcile_duration_seconds_count 1",
            "cvm_operator_leader 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(metrics.is_leader());
    }

    fn spend(namespace: &str, billing: &str, price: f64) -> Option<(SpendLabels, f64)> {
        let labels = SpendLabels {
            namespace: namespace.to_string(),
            billing: billing.to_string(),
        };
        Some((labels, price))
    }

    #[test]
    fn hourly_spend_sums_by_namespace_and_billing_and_forgets_what_stops() {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Metrics::register(&mut registry);
        metrics.hourly_spend("a", spend("team", "PayAsYouGo", 0.18));
        metrics.hourly_spend("b", spend("team", "PayAsYouGo", 0.1));
        metrics.hourly_spend("c", spend("team", "Spot", 0.036));
        metrics.hourly_spend("d", spend("other", "Spot", 0.036));
        metrics.hourly_spend("a", spend("team", "PayAsYouGo", 0.18));
        let text = exported(&registry);
        for line in [
            "cvm_operator_hourly_spend{namespace=\"team\",billing=\"PayAsYouGo\"} 0.28",
            "cvm_operator_hourly_spend{namespace=\"team\",billing=\"Spot\"} 0.036",
            "cvm_operator_hourly_spend{namespace=\"other\",billing=\"Spot\"} 0.036",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // Stopped without charging, then deleted; a price change; never-seen resources.
        metrics.hourly_spend("a", None);
        metrics.hourly_spend("c", spend("team", "Spot", 0.05));
        metrics.hourly_spend("d", None);
        metrics.hourly_spend("never-seen", None);
        let text = exported(&registry);
        for line in [
            "cvm_operator_hourly_spend{namespace=\"team\",billing=\"PayAsYouGo\"} 0.1",
            "cvm_operator_hourly_spend{namespace=\"team\",billing=\"Spot\"} 0.05",
            "cvm_operator_hourly_spend{namespace=\"other\",billing=\"Spot\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
