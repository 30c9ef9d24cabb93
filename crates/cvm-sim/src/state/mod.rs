//! Everything the simulator remembers, behind one lock, and the lifecycle rules that move
//! instances between states as the real clock advances.

pub mod instance;
pub mod lifecycle;
pub mod network;
pub mod operation;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::accounts::{AccountState, Capacity, accounts_from_config};
use super::catalogue::Catalogue;
use super::config::{SimConfig, Timing};
use super::counters::Counters;
use super::faults::FaultTable;
use super::rate_limit::RateLimiter;
use instance::{Instance, InstanceState};
use lifecycle::{Event, Schedule};
use network::{PrivateIpPools, PublicIpPool};
use store::InstanceStore;

#[derive(Debug)]
pub struct SimState {
    pub store: InstanceStore,
    pub private_ips: PrivateIpPools,
    pub public_ips: PublicIpPool,
    pub schedule: Schedule,
    pub accounts: HashMap<String, AccountState>,
    pub capacity: Capacity,
    pub rate_limiter: RateLimiter,
    pub faults: FaultTable,
    pub counters: Counters,
    /// Messages of launches queued to fail, consumed one per launched instance.
    pub launch_failures: VecDeque<String>,
    pub timing: Timing,
    /// The regions and zones served; fixed at start-up.
    pub catalogue: Catalogue,
    /// Numbers operations so a stale scheduled end is told from the current one.
    next_operation: u64,
    /// Public IPs given back by a STOP_CHARGING stop, returned to the pool at the next start
    /// (so that start gets a different address).
    released_public_ips: Vec<Ipv4Addr>,
}

pub fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

impl SimState {
    pub fn new(config: &SimConfig) -> Self {
        Self {
            store: InstanceStore::default(),
            private_ips: PrivateIpPools::default(),
            public_ips: PublicIpPool::default(),
            schedule: Schedule::default(),
            accounts: accounts_from_config(&config.accounts),
            capacity: Capacity::from_config(&config.capacity),
            rate_limiter: RateLimiter::new(config.rate_limits.clone()),
            faults: FaultTable::new(config.faults.clone()),
            counters: Counters::default(),
            launch_failures: VecDeque::new(),
            timing: config.timing,
            catalogue: config
                .regions
                .clone()
                .map_or_else(Catalogue::default, Catalogue::from_specs),
            next_operation: 0,
            released_public_ips: Vec::new(),
        }
    }

    /// Applies every state change that is due by `now`.
    pub fn advance(&mut self, now: Instant) {
        while let Some((due_at, id, event)) = self.schedule.pop_due(now) {
            match event {
                Event::FinishLaunch => self.finish_launch(&id, due_at),
                Event::AssignPublicIp => self.assign_public_ip(&id),
                Event::Disappear => self.disappear(&id),
                Event::FinishOperation(seq) => self.finish_operation(&id, seq),
            }
        }
    }

    /// Adds a freshly launched instance and schedules the end of its launch.
    pub fn launch(&mut self, instance: Instance, now: Instant) {
        let account = self.accounts.get_mut(&instance.owner);
        if let Some(account) = account {
            account.instances += 1;
            if instance.charge.is_spot() {
                account.spot_instances += 1;
            }
            account.frozen += instance.frozen;
        }
        self.schedule.push(
            now + seconds(self.timing.pending_seconds),
            &instance.id,
            Event::FinishLaunch,
        );
        self.store.insert(instance);
    }

    /// Moves an instance to TERMINATING; it disappears after `terminatingSeconds`.
    pub fn begin_termination(&mut self, id: &str, request_id: Option<&str>, now: Instant) {
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        if instance.state == InstanceState::Terminating {
            return;
        }
        instance.state = InstanceState::Terminating;
        instance.operation = None;
        instance.latest_operation = Some("TerminateInstances".into());
        instance.latest_operation_state = Some("OPERATING".into());
        instance.latest_operation_request_id = request_id.map(str::to_string);
        instance.latest_operation_error_msg = None;
        self.schedule.push(
            now + seconds(self.timing.terminating_seconds),
            id,
            Event::Disappear,
        );
    }

    fn finish_launch(&mut self, id: &str, due_at: Instant) {
        let public_delay = seconds(self.timing.public_ip_delay_seconds);
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        if instance.state != InstanceState::Pending {
            return;
        }
        if let Some(message) = instance.launch_failure.take() {
            instance.state = InstanceState::LaunchFailed;
            instance.latest_operation_state = Some("FAILED".into());
            instance.latest_operation_error_msg = Some(message);
            return;
        }
        instance.state = InstanceState::Running;
        instance.latest_operation_state = Some("SUCCESS".into());
        if instance.wants_public_ip {
            // Counted from RUNNING, as a real public IP shows up after the instance is up.
            self.schedule
                .push(due_at + public_delay, id, Event::AssignPublicIp);
        }
    }

    fn assign_public_ip(&mut self, id: &str) {
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        if instance.state == InstanceState::Running && instance.public_ip.is_none() {
            instance.public_ip = Some(self.public_ips.allocate());
        }
    }

    fn disappear(&mut self, id: &str) {
        if self
            .store
            .get(id)
            .is_none_or(|i| i.state != InstanceState::Terminating)
        {
            return;
        }
        let Some(instance) = self.store.remove(id) else {
            return;
        };
        self.private_ips
            .release(&instance.subnet_id, instance.private_ip);
        if let Some(ip) = instance.public_ip {
            self.public_ips.release(ip);
        }
        if let Some(account) = self.accounts.get_mut(&instance.owner) {
            account.instances = account.instances.saturating_sub(1);
            if instance.charge.is_spot() {
                account.spot_instances = account.spot_instances.saturating_sub(1);
            }
            account.frozen = (account.frozen - instance.frozen).max(0.0);
        }
    }
}
