//! `cvm-sim`: a local Tencent Cloud CVM API on loopback. Prints exactly one line,
//! `CVM_SIM_ENDPOINT=http://127.0.0.1:PORT`, to stdout; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use cvm_sim::{Server, SimConfig, tls};

#[derive(Debug, Parser)]
#[command(
    name = "cvm-sim",
    version,
    about = "A local Tencent Cloud CVM API for tests"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// JSON config file (accounts, timing, rateLimits, capacity, faults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated at start-up.
    #[arg(long)]
    tls: bool,
    /// Where to write the certificate (PEM) so clients can trust it.
    #[arg(long, requires = "tls")]
    tls_cert_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CVM_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => SimConfig::load(path)?,
        None => SimConfig::default(),
    };
    let acceptor = if args.tls {
        let certificate = tls::self_signed()?;
        if let Some(path) = &args.tls_cert_out {
            std::fs::write(path, &certificate.cert_pem)
                .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
        }
        Some(certificate.acceptor)
    } else {
        None
    };
    let scheme = if args.tls { "https" } else { "http" };
    let accounts = config.accounts.len();
    let (addr, handle) = Server::bind_with_tls(config, args.listen, acceptor).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "CVM_SIM_ENDPOINT={scheme}://{addr}")?;
        stdout.flush()?;
    }
    tracing::info!(%addr, scheme, accounts, "cvm-sim listening");
    tokio::select! {
        () = handle.wait() => {}
        result = tokio::signal::ctrl_c() => {
            result?;
            tracing::info!("interrupted, stopping");
        }
    }
    Ok(())
}
