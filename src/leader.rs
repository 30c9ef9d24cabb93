//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles.
//!
//! The protocol is the one client-go's leader election uses, so the Lease reads the same in
//! `kubectl get lease`: every write is a full update guarded by `resourceVersion` (two
//! candidates cannot both win), and a lease counts as expired only when its record has not
//! changed for `duration` *as measured by this process's own clock*, so clock skew between
//! nodes cannot cut a leader's term short. A leader that cannot renew within
//! `renew_deadline` gives up before its lease can expire for others. Releasing clears
//! `holderIdentity`, which lets a standby take over at its next poll.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, info, warn};

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Who holds the lease: the Pod name, or host name and process ID.
    pub identity: String,
    /// How long a lease that is no longer renewed keeps others out.
    pub duration: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How long the leader keeps trying to renew before it gives up; below `duration`, so
    /// that it stops before anyone else may start.
    pub renew_deadline: Duration,
    /// How often a standby looks at the lease.
    pub retry_period: Duration,
}

impl LeaseSettings {
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why a leader stopped being one.
#[derive(Debug, thiserror::Error)]
pub enum LeadershipLost {
    #[error("lease {lease} is now held by {holder}")]
    TakenOver { lease: String, holder: String },
    #[error("could not renew lease {lease} within {deadline:?}: {last_error}")]
    RenewalFailed {
        lease: String,
        deadline: Duration,
        last_error: String,
    },
}

/// The outcome of one attempt to take or renew the lease.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldBy(String),
    /// Someone wrote the lease between our read and our write; look again.
    Conflict,
}

/// What a lease said when we last saw it change, and when (on our clock) we saw that.
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Returns once this process holds the lease; polls every `retry_period` until then.
    pub async fn acquire(&mut self) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    info!(lease = %self.settings.name, identity = %self.settings.identity, "became the leader");
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        info!(lease = %self.settings.name, %holder, "standing by; another replica leads");
                        last_holder = Some(holder);
                    }
                }
                Ok(Attempt::Conflict) => debug!("lease changed while acquiring it"),
                Err(e) => {
                    warn!(error = %e, lease = %self.settings.name, "cannot read or write the lease")
                }
            }
            sleep(self.settings.retry_period).await;
        }
    }

    /// Renews the lease every `renew_period` for as long as that works; returns why it
    /// stopped. Only meaningful after [`acquire`](Self::acquire).
    pub async fn hold(&mut self) -> LeadershipLost {
        let mut last_renewal = Instant::now();
        loop {
            sleep(self.settings.renew_period).await;
            let deadline = last_renewal + self.settings.renew_deadline;
            let mut last_error = String::from("no attempt finished");
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return LeadershipLost::RenewalFailed {
                        lease: self.settings.name.clone(),
                        deadline: self.settings.renew_deadline,
                        last_error,
                    };
                }
                match timeout(left, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Held)) => {
                        last_renewal = Instant::now();
                        break;
                    }
                    Ok(Ok(Attempt::HeldBy(holder))) => {
                        return LeadershipLost::TakenOver {
                            lease: self.settings.name.clone(),
                            holder,
                        };
                    }
                    Ok(Ok(Attempt::Conflict)) => last_error = "write conflict".into(),
                    Ok(Err(e)) => {
                        warn!(error = %e, "renewing the lease failed; retrying");
                        last_error = e.to_string();
                    }
                    Err(_) => last_error = "timed out".into(),
                }
                let pause = self
                    .settings
                    .retry_period
                    .min(deadline.saturating_duration_since(Instant::now()));
                sleep(pause).await;
            }
        }
    }

    /// Gives the lease up if this process holds it, so that a standby can take over at once
    /// rather than after the lease expires.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        info!(lease = %self.settings.name, "released the lease");
        Ok(())
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let me = self.settings.identity.clone();
        let duration_secs = i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX);

        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.unwrap_or_default());
                    Ok(Attempt::Held)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
                Err(e) => Err(e),
            };
        };

        let current = lease.spec.clone().unwrap_or_default();
        self.observe(current.clone());
        let holder = current.holder_identity.clone().filter(|h| !h.is_empty());
        if let Some(holder) = &holder
            && *holder != me
            && !self.observed_expired(&current)
        {
            return Ok(Attempt::HeldBy(holder.clone()));
        }

        let mut spec = current;
        if holder.as_deref() != Some(me.as_str()) {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(me);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration_secs);
        lease.spec = Some(spec);
        // `lease` carries the resourceVersion we read: the update fails if anyone wrote since.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            // The server's copy, whose times are truncated to microseconds, is what the
            // next read returns.
            Ok(updated) => {
                self.observe(updated.spec.unwrap_or_default());
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Remembers `spec` and restarts the expiry clock if it differs from what we saw last.
    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().is_none_or(|o| o.spec != spec) {
            self.observed = Some(Observed {
                spec,
                at: Instant::now(),
            });
        }
    }

    fn observed_expired(&self, spec: &LeaseSpec) -> bool {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.settings.duration);
        self.observed
            .as_ref()
            .is_none_or(|o| o.at.elapsed() >= duration)
    }
}

/// The identity for the lease: `POD_NAME` in a cluster, else host name and process ID.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cvm-operator".to_string());
    format!("{host}-{}", std::process::id())
}
