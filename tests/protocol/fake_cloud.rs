//! A recording fake of the CVM API behind the controller's `Cloud` seam, with time from the
//! test's `ManualClock`: instances boot, get their tags and go away as the test moves the
//! clock, never by wall-clock time.
//!
//! What it models is what the create and delete protocol depends on: ClientToken
//! idempotency, tags that become searchable only `tag_delay` after launch (Tencent attaches
//! them asynchronously), PENDING → RUNNING after `boot`, TERMINATING → gone after
//! `terminating`, and calls that fail through the shared [`CrashSwitch`]. Day-2 changes take
//! effect at once in what DescribeInstances shows, while `LatestOperationState` stays
//! `OPERATING` for `operation` (a second change meanwhile is refused, as Tencent does).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cvm_operator::cloud::{
    Clock, Cloud, Clouds, InstanceAttribute, ManualClock, Modification, Offering,
};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use tencent_cloud::credentials::Credentials;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::{
    Instance, ObservedLoginSettings, RunInstancesRequest, Tag, ToTerminate,
};

use crate::crash::{CrashSwitch, Gate};

/// Timings of the fake, in the clock's time.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub boot: Duration,
    pub tag_delay: Duration,
    pub terminating: Duration,
    /// How long a day-2 operation shows `OPERATING`.
    pub operation: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            boot: Duration::from_secs(10),
            tag_delay: Duration::from_secs(3),
            terminating: Duration::from_secs(5),
            operation: Duration::from_secs(2),
        }
    }
}

struct FakeInstance {
    described: Instance,
    launched: Timestamp,
    terminated: Option<Timestamp>,
    /// Hidden from DescribeInstances (an instance that is slow to appear, or a reclaim).
    hidden: bool,
    stopped: bool,
    /// The last day-2 operation: when it started.
    operation_started: Option<Timestamp>,
}

#[derive(Default)]
struct State {
    instances: BTreeMap<String, FakeInstance>,
    by_token: HashMap<String, Vec<String>>,
    launched: u64,
    calls: Vec<String>,
    scripted: HashMap<&'static str, VecDeque<CloudError>>,
    requests: u64,
    /// What `zone_offerings` returns, for every charge type the test set.
    offerings: Vec<Offering>,
}

pub struct FakeCloud {
    clock: Arc<ManualClock>,
    timing: Timing,
    state: Mutex<State>,
    /// The crash switch of the operator "process" currently using this cloud.
    switch: Mutex<Arc<CrashSwitch>>,
}

const RUN: &str = "RunInstances";
const DESCRIBE: &str = "DescribeInstances";
const TERMINATE: &str = "TerminateInstances";

impl FakeCloud {
    pub fn new(clock: Arc<ManualClock>, timing: Timing) -> Arc<Self> {
        Arc::new(Self {
            clock,
            timing,
            state: Mutex::default(),
            switch: Mutex::new(Arc::new(CrashSwitch::never())),
        })
    }

    /// What the region sells from now on.
    #[allow(dead_code)] // for the set tests
    pub fn set_offerings(&self, offerings: Vec<Offering>) {
        self.state.lock().unwrap().offerings = offerings;
    }

    /// Calls from now on go through `switch` (a new operator process).
    pub fn attach(&self, switch: Arc<CrashSwitch>) {
        *self.switch.lock().unwrap() = switch;
    }

    /// The next call of `action` fails with `error`, without effect.
    pub fn fail_next(&self, action: &'static str, error: CloudError) {
        self.lock()
            .scripted
            .entry(action)
            .or_default()
            .push_back(error);
    }

    /// Instances ever launched (RunInstances that created something).
    pub fn launched(&self) -> u64 {
        self.lock().launched
    }

    /// Instances that exist and are not terminating or gone.
    pub fn live(&self) -> Vec<Instance> {
        let now = self.clock.now();
        self.lock()
            .instances
            .values()
            .filter(|i| i.terminated.is_none())
            .map(|i| self.view(i, now))
            .collect()
    }

    /// Actions received, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn calls_of(&self, action: &str) -> usize {
        self.lock().calls.iter().filter(|c| *c == action).count()
    }

    /// Hides the instance from DescribeInstances and tag lookups, or shows it again.
    pub fn set_hidden(&self, id: &str, hidden: bool) {
        if let Some(i) = self.lock().instances.get_mut(id) {
            i.hidden = hidden;
        }
    }

    /// The instance disappears at once, as after a spot reclaim.
    pub fn reclaim(&self, id: &str) {
        self.lock().instances.remove(id);
    }

    /// Launch fails: the instance shows LAUNCH_FAILED once booted.
    pub fn fail_launch(&self, id: &str) {
        if let Some(i) = self.lock().instances.get_mut(id) {
            i.described.latest_operation_state = Some("FAILED".into());
            i.described.latest_operation_error_msg = Some("simulated launch failure".into());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn since(now: Timestamp, then: Timestamp) -> Duration {
        Duration::try_from(now.duration_since(then)).unwrap_or_default()
    }

    /// What DescribeInstances shows at `now`, or `None` once it is gone.
    fn view(&self, i: &FakeInstance, now: Timestamp) -> Instance {
        let mut shown = i.described.clone();
        let booted = Self::since(now, i.launched) >= self.timing.boot;
        shown.instance_state = match (i.terminated, booted) {
            (Some(_), _) => "TERMINATING",
            (None, false) => "PENDING",
            (None, true) if shown.latest_operation_state.as_deref() == Some("FAILED") => {
                "LAUNCH_FAILED"
            }
            (None, true) if i.stopped => "STOPPED",
            (None, true) => "RUNNING",
        }
        .to_string();
        if let Some(started) = i.operation_started {
            let done = Self::since(now, started) >= self.timing.operation;
            shown.latest_operation_state = Some(if done { "SUCCESS" } else { "OPERATING" }.into());
        }
        if !booted {
            shown.private_ip_addresses.clear();
        }
        shown
    }

    fn visible(&self, i: &FakeInstance, now: Timestamp) -> bool {
        !i.hidden
            && i.terminated
                .is_none_or(|at| Self::since(now, at) < self.timing.terminating)
    }

    /// Records the call and decides, with the crash switch and the script, whether it runs.
    fn admit(&self, action: &'static str, effect: bool) -> Result<Gate, CloudError> {
        let switch = Arc::clone(&self.switch.lock().unwrap());
        let gate = switch.gate(effect.then_some(action));
        let crashed = || CloudError::Internal(format!("{action}: the operator process crashed"));
        if gate == Gate::Dead || gate == Gate::CrashBefore {
            return Err(crashed());
        }
        let mut state = self.lock();
        state.calls.push(action.to_string());
        if let Some(error) = state.scripted.get_mut(action).and_then(VecDeque::pop_front) {
            return Err(error);
        }
        Ok(gate)
    }

    fn answer<T>(gate: Gate, action: &str, value: T) -> Result<T, CloudError> {
        if gate == Gate::CrashAfter {
            // The call took effect; the process died before it saw the answer.
            return Err(CloudError::Internal(format!(
                "{action}: the operator process crashed before the answer arrived"
            )));
        }
        Ok(value)
    }

    fn run(&self, request: &RunInstancesRequest) -> Result<Vec<String>, CloudError> {
        let gate = self.admit(RUN, true)?;
        let now = self.clock.now();
        let mut state = self.lock();
        let token = request.client_token.clone().unwrap_or_default();
        if let Some(ids) = state.by_token.get(&token).filter(|_| !token.is_empty()) {
            let ids = ids.clone();
            drop(state);
            return Self::answer(gate, RUN, ids);
        }
        let count = request.instance_count.unwrap_or(1).max(1);
        let mut ids = Vec::new();
        for _ in 0..count {
            state.launched += 1;
            let id = format!("ins-{:08x}", state.launched);
            let described = Instance {
                instance_id: id.clone(),
                instance_charge_type: request.instance_charge_type.clone(),
                instance_type: request.instance_type.clone(),
                instance_name: request.instance_name.clone(),
                image_id: Some(request.image_id.clone()),
                placement: Some(request.placement.clone()),
                security_group_ids: request.security_group_ids.clone(),
                internet_accessible: request.internet_accessible.clone(),
                system_disk: request.system_disk.clone(),
                data_disks: request.data_disks.clone(),
                login_settings: request
                    .login_settings
                    .as_ref()
                    .map(|l| ObservedLoginSettings {
                        key_ids: l.key_ids.clone(),
                    }),
                private_ip_addresses: vec![format!("10.0.0.{}", state.launched % 250 + 2)],
                tags: request
                    .tag_specification
                    .iter()
                    .flat_map(|spec| spec.tags.clone())
                    .collect(),
                ..Default::default()
            };
            state.instances.insert(
                id.clone(),
                FakeInstance {
                    described,
                    launched: now,
                    terminated: None,
                    hidden: false,
                    stopped: false,
                    operation_started: None,
                },
            );
            ids.push(id);
        }
        if !token.is_empty() {
            state.by_token.insert(token, ids.clone());
        }
        drop(state);
        Self::answer(gate, RUN, ids)
    }

    /// DescribeInstances: the visible instances that `matches` selects, as they look now.
    fn describe_where(
        &self,
        matches: impl Fn(&FakeInstance, Timestamp) -> bool,
    ) -> Result<Vec<Instance>, CloudError> {
        let gate = self.admit(DESCRIBE, false)?;
        let now = self.clock.now();
        let found = self
            .lock()
            .instances
            .values()
            .filter(|i| self.visible(i, now) && matches(i, now))
            .map(|i| self.view(i, now))
            .collect();
        Self::answer(gate, DESCRIBE, found)
    }

    fn describe(&self, ids: &[String]) -> Result<Vec<Instance>, CloudError> {
        self.describe_where(|i, _| ids.contains(&i.described.instance_id))
    }

    /// Tags become searchable only `tag_delay` after launch.
    fn find_by_tag(&self, key: &str, value: &str) -> Result<Vec<Instance>, CloudError> {
        self.describe_where(|i, now| {
            Self::since(now, i.launched) >= self.timing.tag_delay
                && i.described.tag(key) == Some(value)
        })
    }

    fn terminate(&self, instances: &[ToTerminate]) -> Result<(), CloudError> {
        let gate = self.admit(TERMINATE, true)?;
        let now = self.clock.now();
        let mut state = self.lock();
        for instance in instances {
            if let Some(i) = state.instances.get_mut(&instance.instance_id) {
                i.terminated.get_or_insert(now);
            }
        }
        drop(state);
        Self::answer(gate, TERMINATE, ())
    }
}

impl FakeCloud {
    /// How many day-2 changes of `action` were accepted (refusals and crashes before the
    /// call are not counted).
    pub fn changes_of(&self, action: &str) -> usize {
        self.calls_of(&format!("{action}:accepted"))
    }

    /// A change made outside the operator (the console): it shows in DescribeInstances with
    /// someone else's request as the latest operation.
    pub fn console_edit(&self, id: &str, edit: impl FnOnce(&mut Instance)) {
        let mut state = self.lock();
        let instance = state.instances.get_mut(id).expect("a known instance");
        edit(&mut instance.described);
        instance.described.latest_operation_request_id = Some("console-edit".into());
    }

    fn change(&self, id: &str, change: &Modification) -> Result<Option<String>, CloudError> {
        let action = change.action();
        let gate = self.admit(action, true)?;
        let now = self.clock.now();
        let operation = self.timing.operation;
        let mut state = self.lock();
        state.requests += 1;
        let request_id = format!("fake-request-{}", state.requests);
        let refuse = |code: &str| CloudError::Api {
            action: action.into(),
            code: code.into(),
            message: format!("{action} refused by the fake"),
            request_id: request_id.clone(),
        };
        let Some(i) = state.instances.get_mut(id) else {
            return Err(refuse("InvalidInstanceId.NotFound"));
        };
        let busy = i
            .operation_started
            .is_some_and(|started| Self::since(now, started) < operation);
        if busy && change.is_operation() {
            return Err(refuse("OperationDenied.InstanceOperationInProgress"));
        }
        apply(i, change);
        let answer = change.is_operation().then(|| {
            i.operation_started = Some(now);
            i.described.latest_operation = Some(action.into());
            i.described.latest_operation_request_id = Some(request_id.clone());
            request_id.clone()
        });
        state.calls.push(format!("{action}:accepted"));
        drop(state);
        Self::answer(gate, action, answer)
    }
}

/// What the change does to the instance DescribeInstances shows.
fn apply(i: &mut FakeInstance, change: &Modification) {
    let shown = &mut i.described;
    match change {
        Modification::Tags { set, delete } => {
            shown
                .tags
                .retain(|t| !delete.contains(&t.key) && !set.contains_key(&t.key));
            shown.tags.extend(set.iter().map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            }));
        }
        Modification::Attribute(InstanceAttribute::Name(name)) => {
            shown.instance_name = Some(name.clone())
        }
        Modification::Attribute(InstanceAttribute::SecurityGroups(groups)) => {
            shown.security_group_ids = groups.clone();
        }
        Modification::Attribute(InstanceAttribute::HostName { name, .. }) => {
            shown.host_name = Some(name.clone());
        }
        Modification::Attribute(InstanceAttribute::UserData(_)) => {}
        Modification::Bandwidth { max_out_mbps } => {
            shown
                .internet_accessible
                .get_or_insert_with(Default::default)
                .internet_max_bandwidth_out = Some(*max_out_mbps);
        }
        Modification::Project { project_id } => {
            shown
                .placement
                .get_or_insert_with(Default::default)
                .project_id = Some(*project_id);
        }
        Modification::Start => i.stopped = false,
        Modification::Stop { .. } => i.stopped = true,
        Modification::ResetType { instance_type, .. } => {
            shown.instance_type = Some(instance_type.clone());
            // Tencent starts the instance again after a type change.
            i.stopped = false;
        }
        Modification::AssociateKeys { key_ids, .. } => {
            let keys = &mut shown
                .login_settings
                .get_or_insert_with(ObservedLoginSettings::default)
                .key_ids;
            keys.extend(
                key_ids
                    .iter()
                    .filter(|k| !keys.contains(k))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        Modification::DisassociateKeys { key_ids, .. } => {
            if let Some(login) = shown.login_settings.as_mut() {
                login.key_ids.retain(|k| !key_ids.contains(k));
            }
        }
        Modification::Password { .. } | Modification::ResizeDisks(_) => {}
        Modification::Reimage(request) => {
            if let Some(image) = &request.image_id {
                shown.image_id = Some(image.clone());
            }
        }
    }
}

impl Cloud for FakeCloud {
    fn run_instances<'a>(
        &'a self,
        request: &'a RunInstancesRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move { self.run(request) })
    }

    fn describe_instance<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Instance>, CloudError>> {
        Box::pin(async move { Ok(self.describe(&[id.to_string()])?.into_iter().next()) })
    }

    fn describe_instances<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
        Box::pin(async move { self.describe(ids) })
    }

    fn find_instances_by_tag<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
        Box::pin(async move { self.find_by_tag(key, value) })
    }

    fn terminate_instances<'a>(
        &'a self,
        instances: &'a [ToTerminate],
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move { self.terminate(instances) })
    }

    fn change_instance<'a>(
        &'a self,
        id: &'a str,
        change: &'a Modification,
    ) -> BoxFuture<'a, Result<Option<String>, CloudError>> {
        Box::pin(async move { self.change(id, change) })
    }

    fn zone_offerings<'a>(
        &'a self,
        charge_type: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Offering>, CloudError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            Ok(state
                .offerings
                .iter()
                .filter(|o| o.charge_type == charge_type)
                .cloned()
                .collect())
        })
    }
}

/// Every credentials and region get the one fake cloud.
pub struct FakeClouds(pub Arc<FakeCloud>);

impl Clouds for FakeClouds {
    fn get(&self, _credentials: &Credentials, _region: &str) -> Arc<dyn Cloud> {
        self.0.clone()
    }
}
