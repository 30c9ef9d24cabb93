//! `cvm-operator`: `run` runs the controller, `crd` prints the CRD.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use kube::runtime::events::{Recorder, Reporter};
use tracing::info;

use cvm_operator::controller::{self, Context, Settings, sweep::Sweeper};
use cvm_operator::tencent::config::{ClientConfig, RateLimits};
use cvm_operator::tencent::credentials::Credentials;
use cvm_operator::tencent::pool::ClientPool;

#[derive(Parser)]
#[command(
    name = "cvm-operator",
    version,
    about = "Tencent Cloud CVM instances as Kubernetes resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (uses KUBECONFIG or the in-cluster service account).
    Run(RunArgs),
    /// Print the CvmInstance CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Args)]
struct RunArgs {
    /// CVM API endpoint instead of the regional `https://cvm.<region>.tencentcloudapi.com`,
    /// e.g. `https://cvm.intl.tencentcloudapi.com` or a local `http://127.0.0.1:PORT`.
    #[arg(long, env = "CVM_OPERATOR_ENDPOINT")]
    endpoint: Option<String>,
    /// Do not use TENCENTCLOUD_SECRET_ID/KEY for resources without credentialsSecretRef.
    #[arg(long, env = "CVM_OPERATOR_NO_DEFAULT_CREDENTIALS")]
    no_default_credentials: bool,
    /// Seconds between bulk observations of Ready instances.
    #[arg(long, env = "CVM_OPERATOR_RESYNC_SECONDS", default_value_t = 300.0)]
    resync_seconds: f64,
    /// First retry, in seconds, of an error a person must fix (doubles up to --slow-retry-max-seconds).
    #[arg(long, default_value_t = 30.0)]
    slow_retry_seconds: f64,
    #[arg(long, default_value_t = 300.0)]
    slow_retry_max_seconds: f64,
    /// Shortest and longest poll, in seconds, while an instance is on its way.
    #[arg(long, default_value_t = 3.0)]
    poll_min_seconds: f64,
    #[arg(long, default_value_t = 30.0)]
    poll_max_seconds: f64,
    /// Seconds a deleted resource waits for tags to propagate when a creation may be unrecorded.
    #[arg(long, default_value_t = 60.0)]
    tag_grace_seconds: f64,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "CVM_OPERATOR_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Reconciles running at once.
    #[arg(long, env = "CVM_OPERATOR_CONCURRENCY", default_value_t = 64)]
    concurrency: u16,
    /// Turn off coalescing of DescribeInstances/TerminateInstances into calls of up to 100 IDs.
    #[arg(long, env = "CVM_OPERATOR_NO_BATCHING")]
    no_batching: bool,
    /// Milliseconds a batch collects lookups before it is sent.
    #[arg(long, default_value_t = 50)]
    batch_window_ms: u64,
    /// Requests per second per action and account (Tencent's defaults: 10 / 40 / 10).
    #[arg(long, default_value_t = 10)]
    run_instances_rate: u32,
    #[arg(long, default_value_t = 40)]
    describe_instances_rate: u32,
    #[arg(long, default_value_t = 10)]
    terminate_instances_rate: u32,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", cvm_operator::api::crd_yaml());
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(run(args))
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    // kube and reqwest share rustls; exactly one crypto provider must be installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let default_credentials = if args.no_default_credentials {
        None
    } else {
        match Credentials::from_env() {
            Ok(c) => Some(c),
            Err(e) => {
                info!("no default credentials ({e}); resources need credentialsSecretRef");
                None
            }
        }
    };
    let secs = Duration::from_secs_f64;
    let settings = Settings {
        resync: secs(args.resync_seconds),
        slow_retry: secs(args.slow_retry_seconds),
        slow_retry_max: secs(args.slow_retry_max_seconds),
        poll_min: secs(args.poll_min_seconds),
        poll_max: secs(args.poll_max_seconds),
        tag_grace: secs(args.tag_grace_seconds),
        default_credentials,
        ..Settings::default()
    };
    let client_config = ClientConfig {
        endpoint: args.endpoint.clone(),
        rate_limits: RateLimits {
            run_instances: args.run_instances_rate,
            describe_instances: args.describe_instances_rate,
            terminate_instances: args.terminate_instances_rate,
            ..RateLimits::default()
        },
        batching: !args.no_batching,
        batch_window: Duration::from_millis(args.batch_window_ms),
        ..ClientConfig::default()
    };
    let clouds = ClientPool::new(client_config).context("configuring the CVM API client")?;

    let kube = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let reporter = Reporter {
        controller: "cvm-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(kube.clone(), reporter);
    let (sweeper, triggers) = Sweeper::new();
    tokio::spawn(sweeper.clone().run(settings.resync));
    let ctx = Arc::new(Context::new(kube, recorder, clouds, settings, sweeper));

    info!(endpoint = ?args.endpoint, "cvm-operator starting");
    controller::run(
        ctx,
        triggers,
        args.watch_namespace.as_deref(),
        args.concurrency,
        shutdown_signal(),
    )
    .await;
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    info!("shutdown requested; finishing in-flight reconciles");
}
