//! Load figure for cvm-sim: loads 10,000 instances, then measures DescribeInstances
//! (100 ids per call) and RunInstances requests per second on loopback with rate limits
//! off. Run with `cargo bench -p cvm-sim --bench sim_load`; options via env:
//! SIM_BENCH_SECONDS (default 5), SIM_BENCH_WORKERS (default 16).

#[path = "../tests/sim_support/mod.rs"]
mod sim_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use serde_json::json;
use sim_support::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// DescribeInstances checked by scanning the raw body, so that parsing ~180 KB of JSON
/// into a tree on the client does not dominate a figure that is about the server.
async fn assert_total(client: &Client, body: serde_json::Value, expected: usize) {
    let response = client
        .send("DescribeInstances", body, Tweaks::default())
        .await
        .expect("request reaches the simulator");
    let bytes = response.bytes().await.expect("body");
    let needle = format!("\"TotalCount\":{expected},");
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "unexpected answer: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
}

/// Runs `workers` loops of `call` for `duration`; returns requests per second.
async fn measure<F, Fut>(workers: u64, duration: Duration, call: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let call = call.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds = env_or("SIM_BENCH_SECONDS", 5);
    let workers = env_or("SIM_BENCH_WORKERS", 16);
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);

    let load_started = Instant::now();
    let mut ids: Vec<String> = Vec::with_capacity(10_000);
    for batch in 0..100 {
        let created = run(
            &client,
            json!({
                "InstanceCount": 100,
                "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "batch", "Value": batch.to_string()}]}]
            }),
        )
        .await;
        ids.extend(created);
    }
    println!(
        "loaded {} instances in {:.2}s",
        ids.len(),
        load_started.elapsed().as_secs_f64()
    );
    let ids = Arc::new(ids);

    let describe_client = client.clone();
    let describe_ids_shared = ids.clone();
    let describe_rps = measure(workers, Duration::from_secs(seconds), move || {
        let client = describe_client.clone();
        let batch: Vec<String> = describe_ids_shared
            .choose_multiple(&mut rand::rng(), 100)
            .cloned()
            .collect();
        async move {
            let body = json!({"InstanceIds": batch, "Limit": 100});
            assert_total(&client, body, 100).await;
        }
    })
    .await;
    println!(
        "DescribeInstances, 100 ids per call: {describe_rps:.0} requests/s ({:.0} instances/s)",
        describe_rps * 100.0
    );

    let tag_client = client.clone();
    let tag_rps = measure(workers, Duration::from_secs(seconds), move || {
        let client = tag_client.clone();
        async move {
            let body = json!({"Filters": [{"Name": "tag:batch", "Values": ["42"]}], "Limit": 100});
            assert_total(&client, body, 100).await;
        }
    })
    .await;
    println!("DescribeInstances, tag filter (100 hits): {tag_rps:.0} requests/s");

    let run_client = client.clone();
    let run_rps = measure(workers, Duration::from_secs(seconds), move || {
        let client = run_client.clone();
        // Spread over subnets: one /16 subnet holds 65,533 addresses, fewer than this makes.
        let subnet = format!("subnet-bench{:03}", rand::random_range(0..200u32));
        async move {
            run(
                &client,
                json!({"VirtualPrivateCloud": {"VpcId": "vpc-benchmrk", "SubnetId": subnet}}),
            )
            .await;
        }
    })
    .await;
    println!("RunInstances, 1 instance per call: {run_rps:.0} requests/s");
    let total = sim.admin.instances().await.unwrap().len();
    println!("instances at the end: {total}");
}
