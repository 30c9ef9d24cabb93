//! The Tencent API endpoint: `POST /` with TC3 headers and a JSON body.
//! Order of checks: headers (action, version, timestamp, region in the catalogue), signature,
//! rate limit, injected faults, then the action itself.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::Sim;
use super::actions::{self, Action, CVM, Ctx, SERVICES};
use super::auth::{self, KnownKey};
use super::catalogue::Language;
use super::counters::SUCCESS;
use super::envelope;
use super::error::{ApiError, ApiResult};
use super::faults::FaultEffect;
use super::server::ConnectionKill;

/// The real API accepts POST bodies up to 10 MB.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

pub async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let kill = parts.extensions.get::<ConnectionKill>().cloned();
    let action_name = header(&parts.headers, "x-tc-action").map(str::to_string);
    let result = serve(&sim, &parts.method, &parts.headers, body, &request_id, kill).await;
    let outcome = match &result {
        Ok(_) => SUCCESS,
        Err(e) => e.code.as_str(),
    };
    if let Some(action) = &action_name {
        sim.lock().counters.record(action, outcome);
        tracing::debug!(action, outcome, request_id, "request");
    }
    match result {
        Ok(fields) => envelope::success(&fields, &request_id),
        Err(error) => envelope::failure(&error, &request_id),
    }
}

async fn serve(
    sim: &Sim,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
    kill: Option<ConnectionKill>,
) -> ApiResult<Vec<u8>> {
    if method != Method::POST {
        return Err(ApiError::new(
            "UnsupportedProtocol",
            "cvm-sim accepts only POST requests with a JSON body.",
        ));
    }
    let action_name =
        header(headers, "x-tc-action").ok_or_else(|| ApiError::missing_parameter("Action"))?;
    let version =
        header(headers, "x-tc-version").ok_or_else(|| ApiError::missing_parameter("Version"))?;
    // Tencent tells services apart by host; here one endpoint serves them all, so the service
    // is the one the request is signed for (CVM when the signature names none served here).
    let service = auth::signed_service(headers)
        .and_then(|name| SERVICES.iter().find(|s| s.name == name))
        .copied()
        .unwrap_or(CVM);
    if version != service.version {
        return Err(ApiError::new(
            "NoSuchVersion",
            format!(
                "The requested version `{version}` of service `{}` does not exist.",
                service.name
            ),
        ));
    }
    let action = Action::from_name(service, action_name).ok_or_else(|| {
        ApiError::new(
            "InvalidAction",
            format!("The requested action `{action_name}` does not exist."),
        )
    })?;
    let timestamp: i64 = header(headers, "x-tc-timestamp")
        .ok_or_else(|| ApiError::missing_parameter("Timestamp"))?
        .parse()
        .map_err(|_| ApiError::invalid_parameter("`X-TC-Timestamp` must be Unix seconds."))?;
    let region =
        header(headers, "x-tc-region").ok_or_else(|| ApiError::missing_parameter("Region"))?;
    sim.lock().catalogue.check_region(region)?;
    let language = Language::from_header(header(headers, "x-tc-language"));
    let body: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                "RequestSizeLimitExceeded",
                "The request body is larger than 10 MB.",
            )
        })?;
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();

    let (owner, faults) = {
        let mut state = sim.lock();
        let owner = auth::verify(headers, &body, timestamp, now_unix, service.name, |id| {
            state.accounts.get(id).map(|a| KnownKey {
                secret_key: &a.secret_key,
                token: a.token.as_deref(),
            })
        })?;
        if !state
            .rate_limiter
            .try_acquire(&owner, action.name(), Instant::now())
        {
            return Err(ApiError::request_limit_exceeded());
        }
        let faults = state.faults.decide(action.name(), &mut rand::rng());
        (owner, faults)
    };
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    match faults.effect {
        Some(FaultEffect::Error(error)) => return Err(error),
        Some(FaultEffect::DropConnection) => {
            if let Some(kill) = kill {
                kill.0.notify_one();
            }
            // The connection task drops this future together with the socket.
            std::future::pending::<()>().await;
        }
        None => {}
    }

    let params: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_parameter(format!("The request body is not valid JSON: {e}."))
        })?
    };
    let now = Instant::now();
    let answer = {
        let mut state = sim.lock();
        state.advance(now);
        actions::handle(
            action,
            &Ctx {
                action,
                owner: &owner,
                region,
                language,
                request_id,
                now,
            },
            &mut state,
            params,
        )
    };
    if !faults.response_delay.is_zero() {
        tokio::time::sleep(faults.response_delay).await;
    }
    answer
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
