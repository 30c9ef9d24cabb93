//! Shared helpers of the simulator's tests: start a server in-process and call it over
//! real HTTP with requests signed by the project's signer.
#![allow(dead_code)]

pub mod python;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cvm_sim::config::{AccountConfig, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY};
use cvm_sim::{Server, ServerHandle, SimAdmin, SimConfig};
use serde_json::{Value, json};
use tencent_cloud::sign::{SigningInput, sign};

pub const REGION: &str = "ap-guangzhou";
pub const ZONE: &str = "ap-guangzhou-3";
pub const IMAGE: &str = "img-eb30mz89";

pub struct Sim {
    pub endpoint: String,
    pub addr: SocketAddr,
    pub admin: SimAdmin,
    pub handle: ServerHandle,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A config with instant timing and no rate limits unless a test wants them.
pub fn fast_config() -> SimConfig {
    let mut config = SimConfig::default();
    config.timing.pending_seconds = 0.0;
    config.timing.public_ip_delay_seconds = 0.0;
    config.timing.terminating_seconds = 0.0;
    config.timing.operation_seconds = 0.0;
    for limit in config.rate_limits.values_mut() {
        *limit = 0;
    }
    config
}

pub async fn start(config: SimConfig) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, handle) = Server::bind(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let endpoint = format!("http://{addr}");
    Sim {
        admin: SimAdmin::new(&endpoint),
        endpoint,
        addr,
        handle,
    }
}

pub fn account(secret_id: &str, secret_key: &str) -> AccountConfig {
    AccountConfig {
        secret_id: secret_id.into(),
        secret_key: secret_key.into(),
        ..AccountConfig::default()
    }
}

/// Knobs to make a request wrong in one precise way.
#[derive(Clone, Default)]
pub struct Tweaks {
    pub timestamp_offset: i64,
    pub version: Option<String>,
    pub signed_headers: Option<Vec<&'static str>>,
    pub omit_header: Option<&'static str>,
    pub sign_with_key: Option<String>,
    pub token: Option<String>,
    pub body_after_signing: Option<Vec<u8>>,
    /// `X-TC-Language`, unsigned like the SDKs send it.
    pub language: Option<&'static str>,
    /// Sign for this service instead of `cvm` (the version follows unless set).
    pub service: Option<tencent_cloud::service::Service>,
}

#[derive(Clone)]
pub struct Client {
    pub endpoint: String,
    pub host: String,
    pub http: reqwest::Client,
    pub secret_id: String,
    pub secret_key: String,
    pub token: Option<String>,
    pub region: String,
}

impl Client {
    pub fn new(sim: &Sim) -> Self {
        Self::for_account(sim, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)
    }

    pub fn for_account(sim: &Sim, secret_id: &str, secret_key: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            endpoint: sim.endpoint.clone(),
            host: sim.addr.to_string(),
            http: reqwest::Client::new(),
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            token: None,
            region: REGION.into(),
        }
    }

    /// Calls an action; returns the `Response` object.
    pub async fn call(&self, action: &str, body: Value) -> Value {
        self.call_with(action, body, Tweaks::default()).await
    }

    pub async fn call_with(&self, action: &str, body: Value, tweaks: Tweaks) -> Value {
        let response = self
            .send(action, body, tweaks)
            .await
            .expect("request reaches the simulator");
        assert_eq!(response.status(), 200, "the API always answers HTTP 200");
        assert_eq!(response.headers()["content-type"], "application/json");
        let envelope: Value = response.json().await.expect("JSON envelope");
        let inner = envelope["Response"].clone();
        assert!(inner["RequestId"].is_string(), "RequestId in {envelope}");
        inner
    }

    pub async fn send(
        &self,
        action: &str,
        body: Value,
        tweaks: Tweaks,
    ) -> reqwest::Result<reqwest::Response> {
        let payload = serde_json::to_vec(&body).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let timestamp = now + tweaks.timestamp_offset;
        let timestamp_text = timestamp.to_string();
        let names = tweaks
            .signed_headers
            .clone()
            .unwrap_or_else(|| vec!["content-type", "host"]);
        let value_of = |name: &str| -> String {
            match name {
                "content-type" => "application/json".into(),
                "host" => self.host.clone(),
                "x-tc-action" => action.into(),
                other => panic!("test does not sign {other}"),
            }
        };
        let values: Vec<(String, String)> =
            names.iter().map(|n| (n.to_string(), value_of(n))).collect();
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let service = tweaks.service.unwrap_or(tencent_cloud::service::CVM);
        let signature = sign(
            tweaks.sign_with_key.as_deref().unwrap_or(&self.secret_key),
            &SigningInput {
                method: "POST",
                query: "",
                headers: &pairs,
                payload: &payload,
                timestamp,
                service: service.name,
            },
        );
        let version = tweaks
            .version
            .clone()
            .unwrap_or_else(|| service.version.into());
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("X-TC-Action", action.to_string()),
            ("X-TC-Version", version),
            ("X-TC-Timestamp", timestamp_text),
            ("X-TC-Region", self.region.clone()),
            (
                "Authorization",
                signature.authorization(&self.secret_id, service.name),
            ),
        ];
        if let Some(token) = tweaks.token.clone().or_else(|| self.token.clone()) {
            headers.push(("X-TC-Token", token));
        }
        if let Some(language) = tweaks.language {
            headers.push(("X-TC-Language", language.to_string()));
        }
        let mut request = self.http.post(format!("{}/", self.endpoint));
        for (name, value) in headers {
            if tweaks.omit_header != Some(name) {
                request = request.header(name, value);
            }
        }
        let body = tweaks.body_after_signing.unwrap_or(payload);
        request.body(body).send().await
    }
}

/// Calls an action of the Tag service (signed for `tag`, version 2018-08-13).
pub async fn call_tag(client: &Client, action: &str, body: Value) -> Value {
    let tweaks = Tweaks {
        service: Some(tencent_cloud::service::TAG),
        ..Tweaks::default()
    };
    client.call_with(action, body, tweaks).await
}

pub fn error_code(response: &Value) -> Option<&str> {
    response["Error"]["Code"].as_str()
}

/// Asserts the call failed with `code`.
pub fn expect_error(response: &Value, code: &str) {
    assert_eq!(error_code(response), Some(code), "response: {response}");
    assert!(response["Error"]["Message"].is_string());
}

pub fn run_body(extra: Value) -> Value {
    let mut body = json!({
        "Placement": {"Zone": ZONE},
        "ImageId": IMAGE,
        "InstanceType": "S5.MEDIUM2",
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut body, extra) {
        base.extend(extra);
    }
    body
}

/// RunInstances that must succeed; returns the ids.
pub async fn run(client: &Client, extra: Value) -> Vec<String> {
    let response = client.call("RunInstances", run_body(extra)).await;
    assert!(
        error_code(&response).is_none(),
        "RunInstances failed: {response}"
    );
    response["InstanceIdSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

pub async fn describe_ids(client: &Client, ids: &[String]) -> Value {
    client
        .call(
            "DescribeInstances",
            json!({"InstanceIds": ids, "Limit": 100}),
        )
        .await
}

/// The one instance `id` as DescribeInstances shows it (`null` when it does not exist).
pub async fn describe_one(client: &Client, id: &str) -> Value {
    describe_ids(client, &[id.to_string()]).await["InstanceSet"][0].clone()
}

/// Polls DescribeInstances until `check` accepts the instance (or it is gone, when
/// `check` receives `None`), failing after `deadline`.
pub async fn wait_for(
    client: &Client,
    id: &str,
    deadline: Duration,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let end = Instant::now() + deadline;
    loop {
        let response = describe_ids(client, &[id.to_string()]).await;
        let instance = response["InstanceSet"]
            .as_array()
            .and_then(|s| s.first())
            .cloned();
        if check(instance.as_ref()) {
            return instance;
        }
        assert!(
            Instant::now() < end,
            "instance {id} did not reach the expected state in {deadline:?}; last: {response}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn state_is(state: &'static str) -> impl Fn(Option<&Value>) -> bool {
    move |i| i.is_some_and(|i| i["InstanceState"] == state)
}
