//! The listener: one accept loop, plain HTTP/1.1 or HTTPS, serving the API at `/` and the
//! admin API at `/_sim/`. Connections are served by hyper directly so that a fault can
//! drop one without answering.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::config::SimConfig;
use super::{Sim, admin, api};

/// Put into every request's extensions; notifying it closes that request's connection.
#[derive(Clone)]
pub struct ConnectionKill(pub Arc<Notify>);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
}

pub struct Server;

/// A running simulator. Dropping it leaves the server running; call `shutdown` to stop.
pub struct ServerHandle {
    accept_loop: JoinHandle<()>,
    sim: Arc<Sim>,
}

impl ServerHandle {
    /// Stops accepting connections.
    pub fn shutdown(&self) {
        self.accept_loop.abort();
    }

    /// Runs until the accept loop ends (it only ends when shut down).
    pub async fn wait(self) {
        let _ = self.accept_loop.await;
    }

    /// The simulator's state, for in-process inspection.
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }
}

impl Server {
    /// Serves plain HTTP on `addr` (port 0 picks a free port).
    pub async fn bind(
        config: SimConfig,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, ServerHandle), ServerError> {
        Self::bind_with_tls(config, addr, None).await
    }

    /// Serves HTTPS when `tls` is given.
    pub async fn bind_with_tls(
        config: SimConfig,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> Result<(SocketAddr, ServerHandle), ServerError> {
        config.validate()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let sim = Arc::new(Sim::new(&config));
        let router = Router::new()
            .route("/", any(api::handle))
            .merge(admin::routes())
            .with_state(sim.clone());
        let accept_loop = tokio::spawn(accept_loop(listener, router, tls));
        Ok((local, ServerHandle { accept_loop, sim }))
    }
}

async fn accept_loop(listener: TcpListener, router: Router, tls: Option<TlsAcceptor>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, router).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_connection(stream, router).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_connection<I>(io: I, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let kill_for_requests = kill.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectionKill(kill_for_requests.clone()));
        router.clone().oneshot(request)
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = kill.notified() => tracing::debug!("connection dropped by an injected fault"),
    }
}
