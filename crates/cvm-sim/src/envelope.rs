//! The Tencent response envelope: `{"Response": {<fields>, "RequestId": "…"}}`, errors as
//! `Response.Error.{Code,Message}`, always HTTP 200 with `Content-Type: application/json`
//! (the Python SDK only reads errors from exactly that content type).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// Wraps the serialized fields object of a successful answer.
pub fn success(fields: &[u8], request_id: &str) -> Response {
    let mut body = Vec::with_capacity(fields.len() + 80);
    body.extend_from_slice(b"{\"Response\":");
    // `fields` is a JSON object: reopen it to append RequestId.
    let inner = fields
        .strip_suffix(b"}")
        .filter(|f| f.starts_with(b"{"))
        .unwrap_or(b"{");
    body.extend_from_slice(inner);
    if inner.len() > 1 {
        body.push(b',');
    }
    body.extend_from_slice(b"\"RequestId\":");
    body.extend_from_slice(&serde_json::to_vec(request_id).unwrap_or_default());
    body.extend_from_slice(b"}}");
    json_response(body)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorEnvelope<'a> {
    response: ErrorBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
}

pub fn failure(error: &ApiError, request_id: &str) -> Response {
    let body = serde_json::to_vec(&ErrorEnvelope {
        response: ErrorBody {
            error: ErrorFields {
                code: &error.code,
                message: &error.message,
            },
            request_id,
        },
    })
    .unwrap_or_default();
    json_response(body)
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn success_appends_request_id_to_the_fields() {
        let v = body_of(success(br#"{"InstanceIdSet":["ins-1"]}"#, "r-1")).await;
        assert_eq!(v["Response"]["InstanceIdSet"][0], "ins-1");
        assert_eq!(v["Response"]["RequestId"], "r-1");
        let v = body_of(success(b"{}", "r-2")).await;
        assert_eq!(v, serde_json::json!({"Response": {"RequestId": "r-2"}}));
    }

    #[tokio::test]
    async fn failure_has_code_message_and_json_content_type() {
        let response = failure(&ApiError::new("InvalidAction", "nope"), "r-3");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let v = body_of(response).await;
        assert_eq!(v["Response"]["Error"]["Code"], "InvalidAction");
        assert_eq!(v["Response"]["Error"]["Message"], "nope");
        assert_eq!(v["Response"]["RequestId"], "r-3");
    }
}
