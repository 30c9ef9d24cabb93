//! Scale benchmark: N CvmInstances applied at once against the real control plane and
//! cvm-sim at Tencent's rate limits, with the release-built operator as its own process.
//! See docs/performance.md; run with `tools/bench.sh [N...]`.

#[path = "../../tests/support/mod.rs"]
mod support;

mod fleet;
mod proc_stats;
mod report;
mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use cvm_operator::api::{CvmInstance, CvmInstanceSet};
use kube::Api;

use fleet::{Billing, Shape, Tracker};
use report::RunResult;
use world::{Cloud, Operator, Sim};

#[derive(Parser, Debug)]
#[command(about = "cvm-operator scale benchmark")]
struct Args {
    /// Numbers of CvmInstances, one run per number and batching mode.
    #[arg(default_values_t = [100, 1000])]
    sizes: Vec<usize>,
    /// Also a memory run with this many CvmInstances (batching on), with the simulator's
    /// and the operator's rate limits raised 20-fold and a 2 s boot.
    #[arg(long)]
    big: Option<usize>,
    /// Batching modes to run for each size.
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("on"), String::from("off")])]
    batching: Vec<String>,
    /// Billing of the fleet, one run per value: `payg` (all pay-as-you-go) and/or `mixed`
    /// (every other instance spot).
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("payg")])]
    billing: Vec<String>,
    /// How the fleet is asked for, one run per value: `single` (N CvmInstances) and/or `set`
    /// (one CvmInstanceSet of N, scaled to 0 at the end).
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("single")])]
    shape: Vec<String>,
    /// With the `set` shape: how many sets of N (each N replicas), created together and
    /// scaled to 0 together; Ready and gone are counted over all their children.
    #[arg(long, default_value_t = 1)]
    sets: usize,
    /// The operator's --resync-seconds during the benchmark.
    #[arg(long, default_value_t = 10.0)]
    resync_seconds: f64,
    /// Resync periods over which steady-state DescribeInstances are counted.
    #[arg(long, default_value_t = 4)]
    periods: u32,
    /// Extra argument for the operator (repeat for several), e.g. --operator-arg=--concurrency=16.
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// Extra environment variable for the operator, KEY=VALUE (repeat for several), e.g.
    /// --operator-env=MALLOC_ARENA_MAX=2.
    #[arg(long = "operator-env")]
    operator_env: Vec<String>,
    /// Where the Markdown results go (default: target/bench/scale-<unix time>.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run_all(args));
}

async fn run_all(args: Args) {
    let cp = support::control_plane();
    world::install_deploy();
    let client = cp.admin_client().await;
    let resync = Duration::from_secs_f64(args.resync_seconds);

    let mut plan: Vec<(Fleet, bool, Cloud, Vec<String>)> = Vec::new();
    for &n in &args.sizes {
        for shape in &args.shape {
            for billing in &args.billing {
                for mode in &args.batching {
                    let batching = match mode.as_str() {
                        "on" => true,
                        "off" => false,
                        other => panic!("--batching takes on and/or off, not {other}"),
                    };
                    let shape = Shape::parse(shape);
                    let fleet = Fleet {
                        n,
                        billing: Billing::parse(billing),
                        shape,
                        sets: if shape == Shape::Set { args.sets } else { 1 },
                    };
                    plan.push((fleet, batching, Cloud::REAL, args.operator_args.clone()));
                }
            }
        }
    }
    if let Some(n) = args.big {
        let cloud = Cloud {
            run_instances_rate: 200,
            describe_instances_rate: 800,
            terminate_instances_rate: 200,
            pending_seconds: 2.0,
            public_ip_delay_seconds: 1.0,
            terminating_seconds: 1.0,
        };
        let mut extra = vec![
            format!("--run-instances-rate={}", cloud.run_instances_rate),
            format!(
                "--describe-instances-rate={}",
                cloud.describe_instances_rate
            ),
            format!(
                "--terminate-instances-rate={}",
                cloud.terminate_instances_rate
            ),
        ];
        extra.extend(args.operator_args.iter().cloned());
        let fleet = Fleet {
            n,
            billing: Billing::PayAsYouGo,
            shape: Shape::Single,
            sets: 1,
        };
        plan.push((fleet, true, cloud, extra));
    }

    let mut results = Vec::new();
    for (fleet, batching, cloud, extra) in plan {
        eprintln!(
            "== N={}, {} x{}, batching {}, billing {} (physical limit {:.0} s)",
            fleet.n,
            fleet.shape.label(),
            fleet.sets,
            if batching { "on" } else { "off" },
            fleet.billing.label(),
            cloud.physical_limit(fleet.n).as_secs_f64()
        );
        let measure = Measure {
            env: &args.operator_env,
            resync,
            periods: args.periods,
        };
        let result = run_one(&client, fleet, batching, cloud, extra, &measure).await;
        eprintln!("{}", report::table(std::slice::from_ref(&result)));
        results.push(result);
    }

    let text = format!(
        "{}\n{}",
        report::table(&results),
        report::settings(&results)
    );
    println!("{text}");
    let out = args.out.unwrap_or_else(|| {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(world::REPO).join(format!("target/bench/scale-{unix}.md"))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create the results directory");
    }
    std::fs::write(&out, text).expect("write the results");
    eprintln!("results written to {}", out.display());
}

/// What one run creates.
#[derive(Clone, Copy)]
struct Fleet {
    n: usize,
    billing: Billing,
    shape: Shape,
    /// Sets of `n` (the set shape); 1 otherwise.
    sets: usize,
}

/// What every run shares: the operator's environment and the steady-state measurement.
#[derive(Clone, Copy)]
struct Measure<'a> {
    env: &'a [String],
    resync: Duration,
    periods: u32,
}

async fn run_one(
    client: &kube::Client,
    fleet: Fleet,
    batching: bool,
    cloud: Cloud,
    extra: Vec<String>,
    measure: &Measure<'_>,
) -> RunResult {
    let Measure {
        env,
        resync,
        periods,
    } = *measure;
    let Fleet {
        n,
        billing,
        shape,
        sets: set_count,
    } = fleet;
    // What is waited for: every child of every set.
    let total = n * set_count;
    let cp = support::control_plane();
    let namespace = support::new_namespace(client, &format!("bench-{n}")).await;
    let dir = cp.work_dir().join(format!("bench-{namespace}"));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = Sim::start(&dir, &cloud).await;

    let mut operator_args = vec![format!("--resync-seconds={}", resync.as_secs_f64())];
    if !batching {
        operator_args.push("--no-batching".into());
    }
    operator_args.extend(extra.iter().cloned());
    let mut extra = extra;
    extra.extend(env.iter().map(|e| format!("env {e}")));
    let operator = Operator::start(&dir, &sim, &namespace, &operator_args, env).await;
    eprintln!("    operator log: {}", operator.log_path().display());

    let api: Api<CvmInstance> = Api::namespaced(client.clone(), &namespace);
    let mut tracker = Tracker::start(api.clone());
    let limit = cloud.physical_limit(n);
    let patience = limit.mul_f64(4.0) + Duration::from_secs(120);

    // Create: every CvmInstance at once (or one set of N), then wait for all to be Ready.
    // A set is created at 0 replicas and, once the operator has reconciled it, scaled to N:
    // the clock measures the scale, not the operator's start-up.
    let sets: Api<CvmInstanceSet> = Api::namespaced(client.clone(), &namespace);
    if shape == Shape::Set {
        fleet::create_sets(&sets, set_count, 0, billing).await;
        fleet::wait_sets_observed(&sets, set_count, Duration::from_secs(60)).await;
    }
    let started = Instant::now();
    match shape {
        Shape::Single => fleet::create_all(&api, n, billing).await,
        Shape::Set => fleet::scale_sets(&sets, set_count, n).await,
    }
    let applied = started.elapsed();
    let ready = tracker
        .wait("Ready", started, patience, |c| c.ready >= total)
        .await;
    let create_timeline = tracker.milestones(
        started,
        &[
            ("all present", &|c| c.present >= total),
            ("all observed", &|c| c.observed >= total),
            ("first RUNNING", &|c| c.running + c.ready > 0),
            ("all RUNNING", &|c| c.running >= total),
            ("first Ready", &|c| c.ready > 0),
            ("half Ready", &|c| c.ready * 2 >= total),
            ("all Ready", &|c| c.ready >= total),
        ],
    );
    let create_calls = sim.admin.counters().await.expect("sim counters");
    let at_ready = operator.stats();

    // Steady state: nothing changes; count DescribeInstances per resync period.
    sim.admin.reset_counters().await.expect("reset counters");
    let steady_start = Instant::now();
    let mut steady_describes = Vec::new();
    let mut seen = 0;
    let mut steady_rate_limited = 0;
    for period in 1..=periods {
        tokio::time::sleep_until((steady_start + resync * period).into()).await;
        let counters = sim.admin.counters().await.expect("sim counters");
        let so_far = report::total(&counters, "DescribeInstances");
        steady_describes.push(so_far - seen);
        seen = so_far;
        steady_rate_limited = report::rate_limited(&counters);
    }

    // Delete: all at once, then wait until every resource is gone.
    sim.admin.reset_counters().await.expect("reset counters");
    let deleting = Instant::now();
    match shape {
        Shape::Single => fleet::delete_all(&api).await,
        Shape::Set => fleet::scale_sets(&sets, set_count, 0).await,
    }
    let gone = tracker
        .wait("deletion", deleting, patience, |c| c.present == 0)
        .await;
    // A set's child lets go once its machine is terminating: "gone" is also every machine
    // terminated in the cloud, whichever comes last.
    let machines_gone = wait_machines_terminated(&sim, deleting, patience).await;
    let gone = gone
        .zip(machines_gone)
        .map(|(children, machines)| children.max(machines));
    let delete_timeline = format!(
        "{}, all machines terminated {:.1}",
        tracker.milestones(
            deleting,
            &[
                ("first deleting", &|c| c.deleting > 0),
                ("all deleting", &|c| c.deleting >= total),
                ("first TERMINATING", &|c| c.terminating > 0),
                ("all TERMINATING", &|c| c.terminating >= total),
                ("first gone", &|c| c.present < total),
                ("half gone", &|c| c.present * 2 <= total),
                ("all gone", &|c| c.present == 0),
            ],
        ),
        machines_gone.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    if shape == Shape::Set {
        for index in 0..set_count {
            sets.delete(&fleet::set_name(index), &Default::default())
                .await
                .expect("delete the set");
        }
    }
    let delete_calls = sim.admin.counters().await.expect("sim counters");
    let at_end = operator.stats();

    let rate_limited = report::rate_limited(&create_calls)
        + steady_rate_limited
        + report::rate_limited(&delete_calls);
    drop(operator);
    drop(sim);
    RunResult {
        n: total,
        sets: set_count,
        create_timeline,
        delete_timeline,
        batching,
        billing: billing.label(),
        shape: shape.label(),
        cloud,
        operator_args: extra,
        applied,
        ready,
        create_calls,
        steady_describes,
        resync,
        gone,
        delete_calls,
        rate_limited,
        at_ready,
        at_end,
    }
}

/// When no machine of the simulator is left in any state but TERMINATED (polled every
/// 200 ms), from `since`; `None` after `patience`.
async fn wait_machines_terminated(
    sim: &Sim,
    since: Instant,
    patience: Duration,
) -> Option<Duration> {
    while since.elapsed() < patience {
        let instances = sim.admin.instances().await.expect("sim instances");
        if instances.iter().all(|i| i.instance_state == "TERMINATED") {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
