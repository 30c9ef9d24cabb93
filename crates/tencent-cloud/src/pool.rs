//! One CVM client per (credentials, region), all sharing one HTTP connection pool.
//!
//! Tencent's rate limits count per action, region and sub-account, so the limiters and
//! batchers must be shared by every resource that uses the same credentials in a region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{CvmClient, Endpoint};
use super::config::ClientConfig;
use super::credentials::Credentials;
use super::error::CloudError;
use super::tag::TagClient;

pub struct ClientPool {
    http: reqwest::Client,
    config: ClientConfig,
    clients: Mutex<HashMap<(Credentials, String), Arc<CvmClient>>>,
    tag_clients: Mutex<HashMap<(Credentials, String), Arc<TagClient>>>,
}

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool")
            .field("config", &self.config)
            .field("clients", &self.len())
            .finish()
    }
}

impl ClientPool {
    /// Builds the shared HTTP client. Fails on an invalid endpoint override, or when no
    /// rustls crypto provider is installed (the binary installs ring in `main`).
    pub fn new(config: ClientConfig) -> Result<Self, CloudError> {
        if let Some(endpoint) = &config.endpoint {
            Endpoint::parse(endpoint)?;
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            config,
            clients: Mutex::new(HashMap::new()),
            tag_clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client for `credentials` in `region`, created on first use.
    pub fn get(&self, credentials: &Credentials, region: &str) -> Arc<CvmClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (credentials.clone(), region.to_string());
        if let Some(client) = clients.get(&key) {
            return Arc::clone(client);
        }
        let client = Arc::new(CvmClient::new(
            self.http.clone(),
            credentials.clone(),
            region,
            self.config.clone(),
        ));
        clients.insert(key, Arc::clone(&client));
        client
    }

    /// The Tag service client for `credentials` in `region`, created on first use; its rate
    /// limits are shared like the CVM client's.
    pub fn tags(&self, credentials: &Credentials, region: &str) -> Arc<TagClient> {
        let mut clients = self.tag_clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (credentials.clone(), region.to_string());
        Arc::clone(clients.entry(key).or_insert_with(|| {
            Arc::new(TagClient::new(
                self.http.clone(),
                credentials.clone(),
                region,
                self.config.clone(),
            ))
        }))
    }

    /// Drops the clients nobody holds any more whose credentials are not in `keep`, e.g. after
    /// a Secret was rotated, so old keys do not stay in memory.
    pub fn retain_credentials(&self, keep: impl Fn(&Credentials) -> bool) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .retain(|(credentials, _), client| keep(credentials) || Arc::strong_count(client) > 1);
        let mut tag_clients = self.tag_clients.lock().unwrap_or_else(|e| e.into_inner());
        tag_clients
            .retain(|(credentials, _), client| keep(credentials) || Arc::strong_count(client) > 1);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> ClientPool {
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientPool::new(ClientConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn one_client_per_credentials_and_region() {
        let pool = pool();
        let a = Credentials::new("AKID1", "k1");
        let b = Credentials::new("AKID1", "k2");
        let first = pool.get(&a, "ap-guangzhou");
        assert!(Arc::ptr_eq(&first, &pool.get(&a, "ap-guangzhou")));
        assert!(!Arc::ptr_eq(&first, &pool.get(&a, "ap-shanghai")));
        assert!(!Arc::ptr_eq(&first, &pool.get(&b, "ap-guangzhou")));
        assert_eq!(pool.len(), 3);
        assert_eq!(first.region(), "ap-guangzhou");
    }

    #[tokio::test]
    async fn retain_drops_only_unused_clients_of_old_credentials() {
        let pool = pool();
        let old = Credentials::new("AKID1", "old");
        let new = Credentials::new("AKID1", "new");
        let held = pool.get(&old, "ap-guangzhou");
        drop(pool.get(&old, "ap-shanghai"));
        drop(pool.get(&new, "ap-guangzhou"));
        pool.retain_credentials(|c| *c == new);
        assert_eq!(pool.len(), 2, "the held client and the new one stay");
        drop(held);
        pool.retain_credentials(|c| *c == new);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn rejects_plain_http_to_remote_hosts() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let err = ClientPool::new(ClientConfig {
            endpoint: Some("http://cvm.tencentcloudapi.com".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.code(), "ClientError.ConfigError");
    }
}
