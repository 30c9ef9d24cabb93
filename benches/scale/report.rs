//! What one run measured, and the table it prints.

use std::fmt::Write as _;
use std::time::Duration;

use cvm_sim::admin_client::SimCounters;

use crate::proc_stats::ProcStats;
use crate::world::Cloud;

pub const RATE_LIMITED: &str = "RequestLimitExceeded";
const SUCCESS: &str = "Success";

#[derive(Debug)]
pub struct RunResult {
    /// Instances in all (every set's children together).
    pub n: usize,
    /// Sets the `n` instances came in (set shape; 1 otherwise).
    pub sets: usize,
    /// Seconds from the create request to milestones (all present, all RUNNING, ...).
    pub create_timeline: String,
    /// Seconds from the delete / scale-to-0 request to milestones.
    pub delete_timeline: String,
    pub batching: bool,
    /// `payg` or `mixed` (every other instance spot).
    pub billing: &'static str,
    /// `single` (N CvmInstances) or `set` (one CvmInstanceSet of N).
    pub shape: &'static str,
    pub cloud: Cloud,
    pub operator_args: Vec<String>,
    /// Until the API server had accepted every CvmInstance.
    pub applied: Duration,
    /// Until every CvmInstance was Ready, from the first create request.
    pub ready: Option<Duration>,
    /// Sim counters from start until all were Ready.
    pub create_calls: SimCounters,
    /// DescribeInstances per resync period, one entry per period.
    pub steady_describes: Vec<u64>,
    pub resync: Duration,
    /// Until every CvmInstance was gone, from the delete request.
    pub gone: Option<Duration>,
    /// Sim counters during the deletion.
    pub delete_calls: SimCounters,
    /// `RequestLimitExceeded` answers over the whole run, any action.
    pub rate_limited: u64,
    pub at_ready: ProcStats,
    pub at_end: ProcStats,
}

impl RunResult {
    pub fn physical_limit(&self) -> Duration {
        self.cloud.physical_limit(self.n)
    }

    pub fn steady_target(&self) -> u64 {
        self.n.div_ceil(100) as u64 + 2
    }

    fn per_instance(&self, counters: &SimCounters, action: &str) -> f64 {
        total(counters, action) as f64 / self.n as f64
    }

    fn shape_label(&self) -> String {
        if self.sets > 1 {
            format!("{} sets of {}", self.sets, self.n / self.sets)
        } else {
            self.shape.to_string()
        }
    }

    fn mode(&self) -> &'static str {
        if self.batching { "on" } else { "off" }
    }
}

/// Calls of `action`, whatever their outcome.
pub fn total(counters: &SimCounters, action: &str) -> u64 {
    counters
        .calls
        .get(action)
        .map(|outcomes| outcomes.values().sum())
        .unwrap_or(0)
}

/// Calls of `action` the simulator refused, whatever the code.
pub fn refused(counters: &SimCounters, action: &str) -> u64 {
    counters.calls.get(action).map_or(0, |outcomes| {
        outcomes
            .iter()
            .filter(|(outcome, _)| outcome.as_str() != SUCCESS)
            .map(|(_, calls)| calls)
            .sum()
    })
}

pub fn rate_limited(counters: &SimCounters) -> u64 {
    counters
        .calls
        .values()
        .filter_map(|outcomes| outcomes.get(RATE_LIMITED))
        .sum()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("timeout".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

/// A Markdown table of all runs, one row per run.
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| N | shape | batching | billing | applied s | Ready s | limit s | Ready / limit | Run/inst | Describe/inst (create) | RequestLimitExceeded | steady Describe/period (target) | gone s | Describe/inst (delete) | Terminate/inst | Terminate refused | peak RSS MiB | CPU s |\n",
    );
    out.push_str("|---:|:---:|:---:|:---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        let limit = r.physical_limit();
        let ratio = r.ready.map_or("-".into(), |d| {
            format!("{:.2}", d.as_secs_f64() / limit.as_secs_f64())
        });
        let steady = r
            .steady_describes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {} | {:.2} | {:.2} | {} | {} (≤ {}) | {} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
            r.n,
            r.shape_label(),
            r.mode(),
            r.billing,
            r.applied.as_secs_f64(),
            secs(r.ready),
            limit.as_secs_f64(),
            ratio,
            r.per_instance(&r.create_calls, "RunInstances"),
            r.per_instance(&r.create_calls, "DescribeInstances"),
            r.rate_limited,
            steady,
            r.steady_target(),
            secs(r.gone),
            r.per_instance(&r.delete_calls, "DescribeInstances"),
            r.per_instance(&r.delete_calls, "TerminateInstances"),
            refused(&r.delete_calls, "TerminateInstances"),
            r.at_end.peak_rss_mib(),
            r.at_end.cpu.as_secs_f64(),
        );
    }
    out
}

/// The setting of each run, below the table.
pub fn settings(results: &[RunResult]) -> String {
    let mut out = String::new();
    for r in results {
        let c = &r.cloud;
        let _ = writeln!(
            out,
            "- N={} {} batching {} billing {}: timeline (s) creating: {}; deleting: {}; sim limits Run {}/s, Describe {}/s, Terminate {}/s; pending {} s, public IP +{} s, terminating {} s; resync {} s; operator args: {}; at Ready: peak RSS {:.1} MiB, CPU {:.1} s; calls: {} RunInstances and {} DescribeInstances creating, {} TerminateInstances and {} DescribeInstances deleting",
            r.n,
            r.shape_label(),
            r.mode(),
            r.billing,
            r.create_timeline,
            r.delete_timeline,
            c.run_instances_rate,
            c.describe_instances_rate,
            c.terminate_instances_rate,
            c.pending_seconds,
            c.public_ip_delay_seconds,
            c.terminating_seconds,
            r.resync.as_secs_f64(),
            if r.operator_args.is_empty() {
                "(defaults)".into()
            } else {
                r.operator_args.join(" ")
            },
            r.at_ready.peak_rss_mib(),
            r.at_ready.cpu.as_secs_f64(),
            total(&r.create_calls, "RunInstances"),
            total(&r.create_calls, "DescribeInstances"),
            total(&r.delete_calls, "TerminateInstances"),
            total(&r.delete_calls, "DescribeInstances"),
        );
    }
    out
}
