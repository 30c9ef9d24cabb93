//! Tencent Cloud API credentials, kept out of logs and Debug output.

use std::fmt;

/// The environment variables the official SDKs and `tccli` read.
pub const ENV_SECRET_ID: &str = "TENCENTCLOUD_SECRET_ID";
pub const ENV_SECRET_KEY: &str = "TENCENTCLOUD_SECRET_KEY";
pub const ENV_SESSION_TOKEN: &str = "TENCENTCLOUD_SESSION_TOKEN";

/// A secret string whose Debug and Display output never show the value.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where the value is really needed (signing, sending).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Serialised as the plain string: request bodies (a login password) must carry the value.
impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// A SecretId / SecretKey pair, with the session token of temporary (STS) credentials.
///
/// Equality and hashing cover every part, so a rotated key gets its own client from the pool.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub secret_id: String,
    pub secret_key: SecretString,
    /// Sent as `X-TC-Token`; only temporary credentials have one.
    pub token: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &self.secret_key)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why credentials could not be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is empty")]
    Empty(&'static str),
    #[error("environment variable {0} is not valid UTF-8")]
    NotUnicode(&'static str),
}

impl Credentials {
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<SecretString>) -> Self {
        Self {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Reads `TENCENTCLOUD_SECRET_ID`, `TENCENTCLOUD_SECRET_KEY` and the optional
    /// `TENCENTCLOUD_SESSION_TOKEN` from the process environment.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(std::env::var)
    }

    /// Like [`Credentials::from_env`], reading variables through `lookup` so it can be tested
    /// without touching the process environment.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<String, std::env::VarError>,
    ) -> Result<Self, CredentialsError> {
        let required = |name: &'static str| match lookup(name) {
            Ok(v) if v.trim().is_empty() => Err(CredentialsError::Empty(name)),
            Ok(v) => Ok(v.trim().to_string()),
            Err(std::env::VarError::NotPresent) => Err(CredentialsError::Missing(name)),
            Err(std::env::VarError::NotUnicode(_)) => Err(CredentialsError::NotUnicode(name)),
        };
        let secret_id = required(ENV_SECRET_ID)?;
        let secret_key = required(ENV_SECRET_KEY)?;
        // An empty token variable is common in templated deployments; treat it as absent.
        let token = match lookup(ENV_SESSION_TOKEN) {
            Ok(v) if v.trim().is_empty() => None,
            Ok(v) => Some(SecretString::new(v.trim())),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(CredentialsError::NotUnicode(ENV_SESSION_TOKEN));
            }
        };
        Ok(Self {
            secret_id,
            secret_key: SecretString::new(secret_key),
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::env::VarError;

    fn lookup(vars: &[(&'static str, &str)]) -> impl Fn(&'static str) -> Result<String, VarError> {
        let map: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |name| map.get(name).cloned().ok_or(VarError::NotPresent)
    }

    #[test]
    fn debug_redacts_key_and_token() {
        let c = Credentials::new("AKIDexample", "very-secret-key").with_token("session-token-xyz");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDexample"), "{shown}");
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(!shown.contains("session-token-xyz"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn reads_all_three_variables() {
        let c = Credentials::from_lookup(lookup(&[
            (ENV_SECRET_ID, "AKID1"),
            (ENV_SECRET_KEY, "key1"),
            (ENV_SESSION_TOKEN, "tok1"),
        ]))
        .unwrap();
        assert_eq!(c.secret_id, "AKID1");
        assert_eq!(c.secret_key.expose(), "key1");
        assert_eq!(c.token.as_ref().map(SecretString::expose), Some("tok1"));
    }

    #[test]
    fn token_is_optional_and_empty_token_is_absent() {
        let c = Credentials::from_lookup(lookup(&[(ENV_SECRET_ID, "A"), (ENV_SECRET_KEY, "k")]))
            .unwrap();
        assert_eq!(c.token, None);
        let c = Credentials::from_lookup(lookup(&[
            (ENV_SECRET_ID, "A"),
            (ENV_SECRET_KEY, "k"),
            (ENV_SESSION_TOKEN, " "),
        ]))
        .unwrap();
        assert_eq!(c.token, None);
    }

    #[test]
    fn error_names_the_missing_variable() {
        let err = Credentials::from_lookup(lookup(&[(ENV_SECRET_ID, "A")])).unwrap_err();
        assert_eq!(err, CredentialsError::Missing(ENV_SECRET_KEY));
        assert!(err.to_string().contains("TENCENTCLOUD_SECRET_KEY"));
        let err = Credentials::from_lookup(lookup(&[(ENV_SECRET_KEY, "k")])).unwrap_err();
        assert_eq!(err, CredentialsError::Missing(ENV_SECRET_ID));
        let err = Credentials::from_lookup(lookup(&[(ENV_SECRET_ID, ""), (ENV_SECRET_KEY, "k")]))
            .unwrap_err();
        assert_eq!(err, CredentialsError::Empty(ENV_SECRET_ID));
    }

    #[test]
    fn equality_covers_key_and_token() {
        let a = Credentials::new("A", "k1");
        assert_eq!(a, Credentials::new("A", "k1"));
        assert_ne!(a, Credentials::new("A", "k2"));
        assert_ne!(a, Credentials::new("A", "k1").with_token("t"));
    }
}
