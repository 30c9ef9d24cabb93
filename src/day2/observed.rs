//! The instance as the planner sees it: the same record the status mirrors, so that what the
//! planner decided on is exactly what `status.observed` shows. The reconcile fills it from
//! DescribeInstances (and the Tag service), keeping only the tags the spec manages.

pub use crate::api::ObservedInstance as Observed;

/// Instance states in which no modify call is accepted: wait for the next observation.
const TRANSITIONAL_STATES: &[&str] = &[
    "PENDING",
    "STARTING",
    "STOPPING",
    "REBOOTING",
    "SHUTDOWN",
    "TERMINATING",
];

impl Observed {
    /// A modify call is under way (ours or someone's): change nothing until it settles.
    pub fn operation_in_progress(&self) -> bool {
        self.latest_operation_state.as_deref() == Some("OPERATING")
    }

    pub fn transitioning(&self) -> bool {
        self.instance_state
            .as_deref()
            .is_some_and(|s| TRANSITIONAL_STATES.contains(&s))
    }

    pub fn is_running(&self) -> bool {
        self.instance_state.as_deref() == Some("RUNNING")
    }

    pub fn is_stopped(&self) -> bool {
        self.instance_state.as_deref() == Some("STOPPED")
    }

    /// Stopped without charging: Tencent refuses every modify but tags and StartInstances.
    pub fn stopped_without_charging(&self) -> bool {
        self.is_stopped() && self.stop_charging_mode.as_deref() == Some("STOP_CHARGING")
    }
}
