//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API v3.
//!
//! The same code signs the operator's requests and verifies them in `cvm-sim`,
//! so both sides are pinned to the official vectors in the tests below.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers, apart from the secret key.
#[derive(Debug, Clone)]
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// The URL query string, already RFC 3986 encoded; empty for POST.
    pub query: &'a str,
    /// Headers to sign as (name, value); names and values are canonicalised here.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
    /// Unix seconds, the value of `X-TC-Timestamp`.
    pub timestamp: i64,
    /// The service in the credential scope (`cvm`).
    pub service: &'a str,
}

/// The parts of a computed signature, exposed so tests and the simulator can compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub date: String,
    pub signed_headers: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
}

impl Signature {
    pub fn credential_scope(&self, service: &str) -> String {
        format!("{}/{service}/tc3_request", self.date)
    }

    /// The `Authorization` header value.
    pub fn authorization(&self, secret_id: &str, service: &str) -> String {
        format!(
            "{ALGORITHM} Credential={secret_id}/{}, SignedHeaders={}, Signature={}",
            self.credential_scope(service),
            self.signed_headers,
            self.signature
        )
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The UTC calendar date (`YYYY-MM-DD`) of a Unix timestamp.
pub fn utc_date(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's days-to-civil algorithm; avoids a date crate for one conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Computes the signature for `input` with `secret_key`.
pub fn sign(secret_key: &str, input: &SigningInput<'_>) -> Signature {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        input.method,
        input.query,
        canonical_headers,
        signed_headers,
        sha256_hex(input.payload)
    );
    let date = utc_date(input.timestamp);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{date}/{}/tc3_request\n{}",
        input.timestamp,
        input.service,
        sha256_hex(canonical_request.as_bytes())
    );
    let secret_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac(&secret_date, input.service.as_bytes());
    let secret_signing = hmac(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac(&secret_signing, string_to_sign.as_bytes()));
    Signature {
        date,
        signed_headers,
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=a;b, Signature=<hex>`.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.rsplitn(4, '/');
    if scope.next()? != "tc3_request" {
        return None;
    }
    let service = scope.next()?.to_string();
    let date = scope.next()?.to_string();
    let secret_id = scope.next()?.to_string();
    Some(Authorization {
        secret_id,
        date,
        service,
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    })
}

/// Constant-time comparison of two signatures, so verification leaks no timing.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const KEY_B: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    #[test]
    fn payload_hash_matches_reference() {
        assert_eq!(
            sha256_hex(BODY),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
    }

    #[test]
    fn vector_a_current_doc() {
        let sig = sign(
            &"*".repeat(32),
            &SigningInput {
                method: "POST",
                query: "",
                headers: &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Host", "cvm.tencentcloudapi.com"),
                    ("X-TC-Action", "DescribeInstances"),
                ],
                payload: BODY,
                timestamp: 1551113065,
                service: "cvm",
            },
        );
        assert_eq!(sig.date, "2019-02-25");
        assert_eq!(sig.signed_headers, "content-type;host;x-tc-action");
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        assert_eq!(
            sig.signature,
            "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
    }

    #[test]
    fn vector_b_older_doc() {
        let sig = sign(
            KEY_B,
            &SigningInput {
                method: "POST",
                query: "",
                headers: &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Host", "cvm.tencentcloudapi.com"),
                ],
                payload: BODY,
                timestamp: 1551113065,
                service: "cvm",
            },
        );
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            sig.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            sig.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "cvm"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn vector_c_get_request() {
        let sig = sign(
            KEY_B,
            &SigningInput {
                method: "GET",
                query: "Limit=10&Offset=0",
                headers: &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Host", "cvm.tencentcloudapi.com"),
                ],
                payload: b"",
                timestamp: 1539084154,
                service: "cvm",
            },
        );
        assert_eq!(sig.date, "2018-10-09");
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            sig.signature,
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
    }

    #[test]
    fn sdk_request_path_vector() {
        let sig = sign(
            KEY_B,
            &SigningInput {
                method: "POST",
                query: "",
                headers: &[
                    ("Content-Type", "application/json"),
                    ("Host", "cvm.tencentcloudapi.com"),
                ],
                payload: BODY,
                timestamp: 1551113065,
                service: "cvm",
            },
        );
        assert_eq!(
            sig.signature,
            "683bd0b53659853c39699162253251192320a09b3937e27bf8e08a559b1465b8"
        );
    }

    #[test]
    fn utc_date_is_not_local_date() {
        // 00:44 on 2019-02-26 in UTC+8 is still the 25th in UTC.
        assert_eq!(utc_date(1551113065), "2019-02-25");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn authorization_round_trips() {
        let header = "TC3-HMAC-SHA256 Credential=AKIDx/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=abc";
        let parsed = parse_authorization(header).unwrap();
        assert_eq!(parsed.secret_id, "AKIDx");
        assert_eq!(parsed.date, "2019-02-25");
        assert_eq!(parsed.service, "cvm");
        assert_eq!(parsed.signed_headers, vec!["content-type", "host"]);
        assert_eq!(parsed.signature, "abc");
        assert!(parse_authorization("HMAC-SHA1 Credential=x").is_none());
        assert!(parse_authorization("TC3-HMAC-SHA256 Credential=a/b/c/d, Signature=x").is_none());
    }

    #[test]
    fn signature_comparison() {
        assert!(signatures_equal("abcd", "abcd"));
        assert!(!signatures_equal("abcd", "abce"));
        assert!(!signatures_equal("abc", "abcd"));
    }
}
