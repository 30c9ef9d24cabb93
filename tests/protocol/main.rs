//! The create and delete protocol, driven reconcile by reconcile against the real API server,
//! with a scripted fake cloud behind the controller's `Cloud` seam and a manual clock: crash
//! points, grace periods and recovery paths, deterministic and without sleeping.

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod crash_points;
mod day2;
mod driver;
mod fake_cloud;
mod instance_set;
mod paths;
mod replacement;
