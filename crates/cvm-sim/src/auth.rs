//! TC3-HMAC-SHA256 verification of incoming requests, with the error codes of the real API.
//! The signature is recomputed with the project's one signer (`tencent_cloud::sign`).

use axum::http::HeaderMap;

use super::error::{ApiError, ApiResult};
use tencent_cloud::sign::{self, SigningInput};

/// Tencent rejects requests whose timestamp is more than five minutes off its clock.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What the verifier needs to know about a configured key.
pub struct KnownKey<'a> {
    pub secret_key: &'a str,
    pub token: Option<&'a str>,
}

/// The service named in the `Authorization` header's credential scope, if it parses.
pub fn signed_service(headers: &HeaderMap) -> Option<String> {
    let raw = header(headers, "authorization")?;
    sign::parse_authorization(raw).map(|auth| auth.service)
}

/// Checks the `Authorization` header of a POST to `/` for `service`; returns the caller's
/// SecretId.
pub fn verify<'a>(
    headers: &HeaderMap,
    body: &[u8],
    timestamp: i64,
    now: i64,
    service: &str,
    lookup: impl FnOnce(&str) -> Option<KnownKey<'a>>,
) -> ApiResult<String> {
    let raw = header(headers, "authorization")
        .ok_or_else(|| invalid_authorization("the request has no Authorization header"))?;
    let auth = sign::parse_authorization(raw).ok_or_else(|| {
        invalid_authorization(
            "expected `TC3-HMAC-SHA256 Credential=<SecretId>/<date>/cvm/tc3_request, SignedHeaders=..., Signature=...`",
        )
    })?;
    for required in ["content-type", "host"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(invalid_authorization(&format!(
                "SignedHeaders must include `{required}`"
            )));
        }
    }
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            format!(
                "Signature expired. Timestamp {timestamp} differs from the server time {now} by more than 5 minutes."
            ),
        ));
    }
    let key = lookup(&auth.secret_id).ok_or_else(|| unknown_secret_id(&auth.secret_id))?;
    if auth.service != service || auth.date != sign::utc_date(timestamp) {
        return Err(signature_failure());
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header(headers, name).ok_or_else(signature_failure)?;
        signed.push((name.as_str(), value));
    }
    let payload = if header(headers, "x-tc-content-sha256") == Some(UNSIGNED_PAYLOAD) {
        UNSIGNED_PAYLOAD.as_bytes()
    } else {
        body
    };
    let expected = sign::sign(
        key.secret_key,
        &SigningInput {
            method: "POST",
            query: "",
            headers: &signed,
            payload,
            timestamp,
            service,
        },
    );
    if expected.signed_headers != auth.signed_headers.join(";")
        || !sign::signatures_equal(&expected.signature, &auth.signature)
    {
        return Err(signature_failure());
    }
    let sent_token = header(headers, "x-tc-token").filter(|t| !t.is_empty());
    if sent_token != key.token {
        return Err(ApiError::new(
            "AuthFailure.TokenFailure",
            "Token verification failed: the X-TC-Token does not belong to this SecretId.",
        ));
    }
    Ok(auth.secret_id)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid_authorization(detail: &str) -> ApiError {
    ApiError::new(
        "AuthFailure.InvalidAuthorization",
        format!(
            "The Authorization header does not conform to the Tencent Cloud standard: {detail}."
        ),
    )
}

fn signature_failure() -> ApiError {
    ApiError::new(
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated. Please check your signature is correct.",
    )
}

fn unknown_secret_id(secret_id: &str) -> ApiError {
    if secret_id.starts_with("AKID") {
        ApiError::new(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        )
    } else {
        ApiError::new(
            "AuthFailure.InvalidSecretId",
            "Invalid key (not a TencentCloud API key type).",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const KEY: &str = "secret";
    const ID: &str = "AKIDtest";
    const TS: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"Limit":1}"#;

    fn signed_headers(key: &str, signed: &[(&str, &str)], body: &[u8]) -> HeaderMap {
        let sig = sign::sign(
            key,
            &SigningInput {
                method: "POST",
                query: "",
                headers: signed,
                payload: body,
                timestamp: TS,
                service: "cvm",
            },
        );
        let mut map = HeaderMap::new();
        for (k, v) in signed {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map.insert(
            "authorization",
            HeaderValue::from_str(&sig.authorization(ID, "cvm")).unwrap(),
        );
        map
    }

    fn sdk_headers(key: &str) -> HeaderMap {
        signed_headers(
            key,
            &[
                ("content-type", "application/json"),
                ("host", "127.0.0.1:1"),
            ],
            BODY,
        )
    }

    fn check(headers: &HeaderMap, body: &[u8], now: i64, token: Option<&str>) -> ApiResult<String> {
        verify(headers, body, TS, now, "cvm", |id| {
            (id == ID).then_some(KnownKey {
                secret_key: KEY,
                token,
            })
        })
    }

    #[test]
    fn accepts_sdk_and_doc_style_signatures() {
        assert_eq!(check(&sdk_headers(KEY), BODY, TS, None).unwrap(), ID);
        let doc = signed_headers(
            KEY,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("host", "cvm.tencentcloudapi.com"),
                ("x-tc-action", "DescribeInstances"),
            ],
            BODY,
        );
        assert_eq!(check(&doc, BODY, TS + 299, None).unwrap(), ID);
    }

    #[test]
    fn each_failure_has_its_code() {
        let code = |r: ApiResult<String>| r.unwrap_err().code;
        assert_eq!(
            code(check(&sdk_headers("wrong"), BODY, TS, None)),
            "AuthFailure.SignatureFailure"
        );
        assert_eq!(
            code(check(&sdk_headers(KEY), b"{}", TS, None)),
            "AuthFailure.SignatureFailure"
        );
        assert_eq!(
            code(check(&sdk_headers(KEY), BODY, TS + 301, None)),
            "AuthFailure.SignatureExpire"
        );
        assert_eq!(
            code(check(&sdk_headers(KEY), BODY, TS, Some("tok"))),
            "AuthFailure.TokenFailure"
        );
        assert_eq!(
            code(check(&HeaderMap::new(), BODY, TS, None)),
            "AuthFailure.InvalidAuthorization"
        );
        let only_host = signed_headers(KEY, &[("host", "h")], BODY);
        assert_eq!(
            code(check(&only_host, BODY, TS, None)),
            "AuthFailure.InvalidAuthorization"
        );
        let unknown = verify(&sdk_headers(KEY), BODY, TS, TS, "cvm", |_| None);
        assert_eq!(code(unknown), "AuthFailure.SecretIdNotFound");
    }

    #[test]
    fn unsigned_payload_hashes_the_literal() {
        let mut headers = signed_headers(
            KEY,
            &[("content-type", "application/json"), ("host", "h")],
            UNSIGNED_PAYLOAD.as_bytes(),
        );
        headers.insert(
            "x-tc-content-sha256",
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        assert!(check(&headers, b"{\"anything\":1}", TS, None).is_ok());
    }
}
