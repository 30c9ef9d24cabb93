//! One change to an existing instance: what a day-2 step asks the cloud to do. Each variant
//! is exactly one mutating call (ModifyInstancesAttribute takes one attribute per call, and
//! Tencent refuses a second operation while one runs), so the executor can persist what it
//! is about to do, send one call, and wait for `LatestOperationState` to settle.

use std::collections::BTreeMap;

use tencent_cloud::credentials::SecretString;
pub use tencent_cloud::modify::{
    DiskSize, InstanceAttribute, ResetInstanceRequest, ResizeInstanceDisksRequest, StopType,
    StoppedMode,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Tag service ModifyResourceTags: set these, delete those keys (never others).
    Tags {
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// ModifyInstancesAttribute with its one attribute.
    Attribute(InstanceAttribute),
    /// ResetInstancesInternetMaxBandwidth.
    Bandwidth { max_out_mbps: i64 },
    /// ModifyInstancesProject.
    Project { project_id: i64 },
    /// StartInstances.
    Start,
    /// StopInstances.
    Stop {
        stop_type: StopType,
        mode: StoppedMode,
    },
    /// ResetInstancesType; a running instance needs `force_stop`. It ends RUNNING.
    ResetType {
        instance_type: String,
        force_stop: bool,
    },
    /// AssociateInstancesKeyPairs.
    AssociateKeys {
        key_ids: Vec<String>,
        force_stop: bool,
    },
    /// DisassociateInstancesKeyPairs.
    DisassociateKeys {
        key_ids: Vec<String>,
        force_stop: bool,
    },
    /// ResetInstancesPassword.
    Password {
        password: SecretString,
        force_stop: bool,
    },
    /// ResizeInstanceDisks (grow only).
    ResizeDisks(ResizeInstanceDisksRequest),
    /// ResetInstance: reinstalls the system disk. Not idempotent.
    Reimage(ResetInstanceRequest),
}

impl Modification {
    /// The API action that carries the change (for counters, Events and `status.operation`).
    pub fn action(&self) -> &'static str {
        match self {
            Modification::Tags { .. } => "ModifyResourceTags",
            Modification::Attribute(_) => "ModifyInstancesAttribute",
            Modification::Bandwidth { .. } => "ResetInstancesInternetMaxBandwidth",
            Modification::Project { .. } => "ModifyInstancesProject",
            Modification::Start => "StartInstances",
            Modification::Stop { .. } => "StopInstances",
            Modification::ResetType { .. } => "ResetInstancesType",
            Modification::AssociateKeys { .. } => "AssociateInstancesKeyPairs",
            Modification::DisassociateKeys { .. } => "DisassociateInstancesKeyPairs",
            Modification::Password { .. } => "ResetInstancesPassword",
            Modification::ResizeDisks(_) => "ResizeInstanceDisks",
            Modification::Reimage(_) => "ResetInstance",
        }
    }

    /// Whether the change starts an asynchronous CVM operation that DescribeInstances reports
    /// through `LatestOperation*` (the Tag service's changes are synchronous).
    pub fn is_operation(&self) -> bool {
        !matches!(self, Modification::Tags { .. })
    }
}
