//! Day 2: deciding how to bring an existing instance to its spec. Pure: no I/O, no clock of
//! its own. The reconcile observes the instance, calls [`plan`] and performs at most the one
//! [`Change`] it returns, recording it in `status.operation` before the call.
//!
//! - `observed`: what the planner knows of the instance (the `status.observed` mirror);
//! - `diff`: which governed fields differ from the spec, in the order they are applied;
//! - `contest`: the guard that stops fighting a person who keeps changing a field;
//! - `plan`: the decision.

mod contest;
mod diff;
mod observed;
mod plan;
#[cfg(test)]
mod plan_table;

pub use contest::{CONTEST_LIMIT, CONTEST_WINDOW};
pub use diff::Field;
pub use observed::Observed;
pub use plan::{
    ALREADY_ISSUED, Change, Plan, PlanInput, PlannedCondition, REIMAGE_REQUIRED, REPLACE_REQUIRED,
    RESTART_REQUIRED, plan,
};
