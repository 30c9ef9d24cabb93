//! Asynchronous operations on an existing instance: every modify action starts one
//! (`LatestOperationState` OPERATING), its change takes effect when it ends after
//! `operationSeconds` (SUCCESS), and a test can hold it or make it fail (FAILED, nothing
//! changed). One at a time per instance, as on Tencent Cloud.

use std::time::Instant;

use super::instance::{InstanceState, StoppedMode};
use super::lifecycle::Event;
use super::{SimState, seconds};

/// What an operation changes once it succeeds.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Start,
    Stop(StoppedMode),
    /// Reboots, password resets: nothing DescribeInstances shows changes.
    Nothing,
    Rename(String),
    SecurityGroups(Vec<String>),
    HostName(String),
    UserData(String),
    DisableApiTermination(bool),
    CamRole(String),
    Project(i64),
    Bandwidth(i64),
    InstanceType {
        instance_type: String,
        cpu: u32,
        memory_gib: u32,
    },
    AssociateKeys(Vec<String>),
    DisassociateKeys(Vec<String>),
    Reimage {
        image_id: String,
        system_disk_size: Option<i64>,
        /// `Some` when LoginSettings named keys (they replace the old ones), else the keys go.
        key_ids: Vec<String>,
        host_name: Option<String>,
        user_data: Option<String>,
    },
    ResizeDisks {
        system: Option<i64>,
        /// (disk id, new size)
        data: Vec<(String, i64)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Tells this operation's scheduled end from an older one's.
    pub seq: u64,
    pub change: Change,
    /// The state once it succeeded.
    pub ends_in: InstanceState,
    /// The state it falls back to when it fails.
    pub fails_to: InstanceState,
    /// Held by a test: it ends only when released or failed through the admin API.
    pub held: bool,
}

/// How an accepted operation moves the instance's state.
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub during: InstanceState,
    pub ends_in: InstanceState,
}

impl Transition {
    /// The state does not change (renames, tags, bandwidth, ...).
    pub fn stays(state: InstanceState) -> Self {
        Self {
            during: state,
            ends_in: state,
        }
    }
}

impl SimState {
    /// Starts `action` on an instance already checked to accept it; its change applies when
    /// it ends, `operationSeconds` from now.
    pub fn begin_operation(
        &mut self,
        id: &str,
        action: &str,
        request_id: &str,
        now: Instant,
        transition: Transition,
        change: Change,
    ) {
        self.next_operation += 1;
        let seq = self.next_operation;
        let due = now + seconds(self.timing.operation_seconds);
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        instance.operation = Some(Operation {
            seq,
            change,
            ends_in: transition.ends_in,
            fails_to: instance.state,
            held: false,
        });
        instance.state = transition.during;
        instance.latest_operation = Some(action.to_string());
        instance.latest_operation_state = Some("OPERATING".into());
        instance.latest_operation_request_id = Some(request_id.to_string());
        instance.latest_operation_error_msg = None;
        self.schedule.push(due, id, Event::FinishOperation(seq));
    }

    /// The scheduled end of operation `seq`; ignored when it was held, failed or replaced.
    pub(super) fn finish_operation(&mut self, id: &str, seq: u64) {
        let due = self
            .store
            .get(id)
            .and_then(|i| i.operation.as_ref())
            .is_some_and(|op| op.seq == seq && !op.held);
        if due {
            self.complete_operation(id);
        }
    }

    /// Ends the operation in progress with SUCCESS and applies its change.
    pub fn complete_operation(&mut self, id: &str) -> bool {
        let Some(instance) = self.store.get_mut(id) else {
            return false;
        };
        let Some(operation) = instance.operation.take() else {
            return false;
        };
        instance.state = operation.ends_in;
        instance.latest_operation_state = Some("SUCCESS".into());
        self.apply(id, operation.change);
        true
    }

    /// Ends the operation in progress with FAILED: nothing changes but the state settles.
    pub fn fail_operation(&mut self, id: &str, message: &str) -> bool {
        let Some(instance) = self.store.get_mut(id) else {
            return false;
        };
        let Some(operation) = instance.operation.take() else {
            return false;
        };
        instance.state = operation.fails_to;
        instance.latest_operation_state = Some("FAILED".into());
        instance.latest_operation_error_msg = Some(message.to_string());
        true
    }

    /// Keeps the operation in progress OPERATING until released or failed.
    pub fn hold_operation(&mut self, id: &str) -> bool {
        match self.store.get_mut(id).and_then(|i| i.operation.as_mut()) {
            Some(operation) => {
                operation.held = true;
                true
            }
            None => false,
        }
    }

    fn apply(&mut self, id: &str, change: Change) {
        if let Change::Stop(mode) = change {
            self.stop(id, mode);
            return;
        }
        if change == Change::Start {
            self.start(id);
            return;
        }
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        match change {
            Change::Start | Change::Stop(_) | Change::Nothing => {}
            Change::Rename(name) => instance.name = name,
            Change::SecurityGroups(groups) => instance.security_group_ids = groups,
            Change::HostName(name) => instance.host_name = name,
            Change::UserData(data) => instance.user_data = Some(data),
            Change::DisableApiTermination(protected) => {
                instance.disable_api_termination = protected;
            }
            Change::CamRole(role) => instance.cam_role_name = role,
            Change::Project(project) => instance.project_id = project,
            Change::Bandwidth(mbps) => instance.internet_max_bandwidth_out = mbps,
            Change::InstanceType {
                instance_type,
                cpu,
                memory_gib,
            } => {
                instance.instance_type = instance_type;
                instance.cpu = cpu;
                instance.memory_gib = memory_gib;
            }
            Change::AssociateKeys(keys) => {
                for key in keys {
                    if !instance.key_ids.contains(&key) {
                        instance.key_ids.push(key);
                    }
                }
            }
            Change::DisassociateKeys(keys) => instance.key_ids.retain(|k| !keys.contains(k)),
            Change::Reimage {
                image_id,
                system_disk_size,
                key_ids,
                host_name,
                user_data,
            } => {
                instance.image_id = image_id;
                if let Some(size) = system_disk_size {
                    instance.system_disk.disk_size = size;
                }
                instance.key_ids = key_ids;
                if let Some(name) = host_name {
                    instance.host_name = name;
                }
                if user_data.is_some() {
                    instance.user_data = user_data;
                }
            }
            Change::ResizeDisks { system, data } => {
                if let Some(size) = system {
                    instance.system_disk.disk_size = size;
                }
                for (disk_id, size) in data {
                    if let Some(disk) = instance
                        .data_disks
                        .iter_mut()
                        .find(|d| d.disk_id == disk_id)
                    {
                        disk.disk_size = size;
                    }
                }
            }
        }
    }

    /// STOPPED in `mode`; STOP_CHARGING gives the public IP back (a new one comes at start).
    fn stop(&mut self, id: &str, mode: StoppedMode) {
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        instance.stopped_mode = Some(mode);
        if mode == StoppedMode::StopCharging
            && let Some(ip) = instance.public_ip.take()
        {
            self.released_public_ips.push(ip);
        }
    }

    /// RUNNING again; an instance that lost its public IP while stopped gets a new one.
    /// The pool hands out a fresh address before the released ones go back into it, so
    /// the new address always differs from the old.
    fn start(&mut self, id: &str) {
        let Some(instance) = self.store.get_mut(id) else {
            return;
        };
        instance.stopped_mode = None;
        if instance.wants_public_ip && instance.public_ip.is_none() {
            instance.public_ip = Some(self.public_ips.allocate());
        }
        for ip in self.released_public_ips.drain(..) {
            self.public_ips.release(ip);
        }
    }
}
