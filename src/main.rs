//! `cvm-operator`: `run` runs the controller, `crd` prints the CRD.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use cvm_operator::cloud::TencentClouds;
use cvm_operator::controller::{self, Context, Settings, events::EventPublisher, sweep::Sweeper};
use cvm_operator::http;
use cvm_operator::leader::{LeaderElector, LeaseSettings, default_identity};
use cvm_operator::metrics::{self, Metrics};
use cvm_operator::telemetry::{self, LogFormat};
use tencent_cloud::config::{ClientConfig, RateLimits};
use tencent_cloud::credentials::Credentials;
use tencent_cloud::pool::ClientPool;

/// jemalloc, not the system's malloc: with thousands of cached objects replaced on every
/// watch event, it keeps the resident set smaller and costs less CPU (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    Run(Box<RunArgs>),
    /// Print every CustomResourceDefinition as YAML (documents separated by `---`).
    Crd(CrdArgs),
}

#[derive(Args)]
struct CrdArgs {
    /// Write each CRD to DIR/<name>.yaml (as `crds/` holds them) instead of printing.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<std::path::PathBuf>,
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
    /// Poll, in seconds, of a set's child while its machine boots or terminates (at most
    /// --poll-min-seconds). Its DescribeInstances are batched with its siblings', 100 IDs a
    /// call, so a short poll costs a set of 1,000 about ten calls a second while it boots
    /// (the client's rate limiter spaces more) and brings each child Ready or gone within a
    /// second of its machine.
    #[arg(long, default_value_t = 1.0)]
    set_child_poll_seconds: f64,
    /// Seconds a deleted resource waits for tags to propagate when a creation may be unrecorded.
    #[arg(long, default_value_t = 60.0)]
    tag_grace_seconds: f64,
    /// Seconds a day-2 call recorded without an answer may take to show on the instance before
    /// it is taken as never sent and made again. Keep it well above the API client's timeout.
    #[arg(long, default_value_t = 120.0)]
    operation_settle_seconds: f64,
    /// Seconds stock and prices (DescribeZoneInstanceConfigInfos) are reused before they are
    /// asked for again; one call per charge type per (credentials, region) each period.
    #[arg(long, default_value_t = 300.0)]
    offerings_seconds: f64,
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
    /// Run only while holding a coordination.k8s.io Lease, so that of several replicas only
    /// one reconciles; the others stand by and take over when it goes.
    #[arg(long, env = "CVM_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "CVM_OPERATOR_LEASE_NAME", default_value = "cvm-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else cvm-operator).
    #[arg(long, env = "CVM_OPERATOR_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Address of the HTTP server for /metrics, /healthz and /readyz (port 0: any free port).
    #[arg(long, env = "CVM_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Log format: `text` for people, `json` for log collectors. The level comes from RUST_LOG.
    #[arg(long, env = "CVM_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(CrdArgs { out_dir: None }) => {
            print!("{}", cvm_operator::api::crds_yaml());
            Ok(())
        }
        Command::Crd(CrdArgs { out_dir: Some(dir) }) => {
            for crd in cvm_operator::api::crds() {
                let path = dir.join(cvm_operator::api::crd_file_name(&crd));
                std::fs::write(&path, cvm_operator::api::crd_yaml(&crd))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let result = runtime.block_on(run(*args));
            // After a lost lease, reconciles may still be running: cut them off rather than
            // wait, since another replica now owns the resources.
            runtime.shutdown_timeout(Duration::from_secs(1));
            result
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    // kube and reqwest share rustls; exactly one crypto provider must be installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(args.log_format);

    let shutdown = Shutdown::on_signals();
    let mut registry = Registry::with_prefix(metrics::PREFIX);
    let metrics = Arc::new(Metrics::register(&mut registry));
    let (listener, http_addr) = http::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    info!(%http_addr, "serving /metrics, /healthz and /readyz");
    let endpoints = http::Endpoints {
        registry: Arc::new(registry),
        metrics: metrics.clone(),
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, endpoints, async move {
        let _ = http_stopped.await;
    }));

    let result = operate(args, metrics, shutdown).await;
    let _ = stop_http.send(());
    match server.await {
        Ok(Err(e)) => warn!(error = %e, "HTTP server failed"),
        Err(e) => warn!(error = %e, "HTTP server task failed"),
        Ok(Ok(())) => {}
    }
    result
}

/// Runs the controller (after winning the lease, with leader election) until shutdown.
async fn operate(args: RunArgs, metrics: Arc<Metrics>, shutdown: Shutdown) -> Result<()> {
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
        set_child_poll: secs(args.set_child_poll_seconds.min(args.poll_min_seconds)),
        tag_grace: secs(args.tag_grace_seconds),
        operation_settle: secs(args.operation_settle_seconds),
        offerings_period: secs(args.offerings_seconds),
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
        observer: Some(metrics.clone()),
        ..ClientConfig::default()
    };
    let clouds = TencentClouds::new(
        ClientPool::new(client_config).context("configuring the CVM API client")?,
    );

    let kube = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;

    let mut elector = if args.leader_election {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| "cvm-operator".to_string());
        let settings = LeaseSettings::new(args.lease_name.clone(), namespace, default_identity());
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "leader election on");
        let mut elector = LeaderElector::new(kube.clone(), settings);
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown.requested() => return Ok(()),
        }
        Some(elector)
    } else {
        None
    };
    metrics.set_leader(true);

    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| default_identity());
    let events = EventPublisher::new(kube.clone(), instance);
    let sweeper = Sweeper::new();
    let triggers = sweeper.triggers::<cvm_operator::api::CvmInstance>();
    tokio::spawn(sweeper.clone().run(settings.resync));
    // One watch per kind, shared by every controller that reads the kind; each controller
    // subscribes before the watches start. A new controller joins the `join!`.
    let cvm_instances = controller::SharedWatch::new(controller::watched_api(
        &kube,
        args.watch_namespace.as_deref(),
    ));
    let cvm_instance_watch = cvm_instances.subscribe();
    // The set controller is woken by changes of its children, from the same watch.
    let set_children = cvm_instances.subscribe();
    let sets = cvm_operator::set::watched_api(&kube, args.watch_namespace.as_deref());
    let ctx = Arc::new(
        Context::new(kube, events, Arc::new(clouds), settings, sweeper)
            .with_metrics(metrics.clone())
            .with_instances(cvm_instance_watch.cache.clone()),
    );

    info!(endpoint = ?args.endpoint, "cvm-operator starting");
    let set_controller = cvm_operator::set::run(
        ctx.clone(),
        sets,
        set_children,
        args.concurrency,
        shutdown.requested(),
    );
    let cvm_instance_controller = controller::run_shared(
        ctx,
        cvm_instance_watch,
        triggers,
        args.concurrency,
        shutdown.requested(),
    );
    let watch_metrics = metrics.clone();
    let controller = async move {
        tokio::select! {
            // The watches end only with the process; the controllers end on shutdown.
            () = cvm_instances.run(watch_metrics) => {}
            ((), ()) = async { tokio::join!(cvm_instance_controller, set_controller) } => {}
        }
    };
    let Some(elector) = elector.as_mut() else {
        controller.await;
        return Ok(());
    };
    tokio::select! {
        () = controller => {
            // In-flight reconciles are done: hand over now rather than after the lease expires.
            if let Err(e) = elector.release().await {
                warn!(error = %e, "could not release the lease; the standby takes over when it expires");
            }
            metrics.set_leader(false);
            Ok(())
        }
        lost = elector.hold() => {
            metrics.set_leader(false);
            error!(error = %lost, "lost the leader lease; exiting so that the Pod restarts");
            Err(anyhow::Error::new(lost).context("leader election"))
        }
    }
}

/// Completes for every waiter once SIGTERM or Ctrl-C arrived.
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    fn on_signals() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
            // Keep the sender alive so that waiters see `true`, not a closed channel.
            std::future::pending::<()>().await;
        });
        Self(rx)
    }

    fn requested(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|requested| *requested).await;
        }
    }
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
