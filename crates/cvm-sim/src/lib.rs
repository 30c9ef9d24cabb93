//! `cvm-sim`: a local Tencent Cloud CVM API (version 2017-03-12) that speaks the real wire
//! protocol: TC3-HMAC-SHA256 authentication, JSON envelopes, the real error codes, an
//! instance lifecycle driven by the real clock, per-account balance, quotas, capacity and
//! rate limits, and fault injection through an admin API under `/_sim/`.
//! See docs/cvm-sim.md.

pub mod accounts;
pub mod actions;
pub mod admin;
pub mod admin_client;
pub mod admin_edits;
pub mod api;
pub mod auth;
pub mod catalogue;
pub mod config;
pub mod counters;
pub mod envelope;
pub mod error;
pub mod faults;
pub mod pricing;
pub mod rate_limit;
pub mod server;
pub mod state;
pub mod tls;

use std::sync::{Mutex, MutexGuard};

pub use admin_client::SimAdmin;
pub use config::SimConfig;
pub use server::{Server, ServerError, ServerHandle};

/// The simulator's shared state. One lock: every operation is short, and a single lock
/// keeps the lifecycle, accounts and indexes consistent with each other.
#[derive(Debug)]
pub struct Sim {
    state: Mutex<state::SimState>,
}

impl Sim {
    pub fn new(config: &SimConfig) -> Self {
        Self {
            state: Mutex::new(state::SimState::new(config)),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, state::SimState> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
