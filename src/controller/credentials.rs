//! Finding the Tencent Cloud credentials and login password for a resource (design §6).
//!
//! Secrets are read one by name, from the resource's own namespace only, and their values
//! go nowhere but into the signed request.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;

use crate::api::{SecretKeyRef, SecretRef};
use tencent_cloud::credentials::{Credentials, SecretString};

pub const KEY_SECRET_ID: &str = "secretId";
pub const KEY_SECRET_KEY: &str = "secretKey";
pub const KEY_TOKEN: &str = "token";

/// Why a resource has no usable credentials or password; says which Secret or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    #[error("Secret {namespace}/{name} does not exist")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?} (or it is empty)")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    /// RBAC denies the operator `get` on the Secret: in the per-namespace Secrets mode, the
    /// namespace has not opted in. `denial` is the API server's message, which names the
    /// operator's identity, the verb, the resource and the namespace.
    #[error(
        "the operator may not read Secret {namespace}/{name}: {denial}. Grant its \
         ServiceAccount `get` on `secrets` in namespace {namespace}, e.g. with a RoleBinding to \
         its secret-reader ClusterRole (docs/operations.md, Secrets per namespace)"
    )]
    SecretForbidden {
        namespace: String,
        name: String,
        denial: String,
    },
    /// RBAC denies the operator `patch` on the credentials Secret, which it needs to hold
    /// the Secret (finalizer `cvm-operator.io/credentials-in-use`) while the resource needs it.
    #[error(
        "the operator may not hold Secret {namespace}/{name} while this resource needs it: \
         {denial}. Grant its ServiceAccount `patch` on `secrets` in namespace {namespace} \
         (the secret-reader ClusterRole of this version does)"
    )]
    HoldForbidden {
        namespace: String,
        name: String,
        denial: String,
    },
    #[error(
        "spec.credentialsSecretRef is not set and the operator has no default credentials \
         (TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY)"
    )]
    NoDefaultCredentials,
}

impl SecretProblem {
    /// The condition reason.
    pub fn reason(&self, what: Purpose) -> &'static str {
        match (self, what) {
            (SecretProblem::NoDefaultCredentials, _) => "CredentialsNotConfigured",
            (SecretProblem::SecretNotFound { .. }, Purpose::Credentials) => {
                "CredentialsSecretNotFound"
            }
            (SecretProblem::KeyMissing { .. }, Purpose::Credentials) => "CredentialsKeyMissing",
            (SecretProblem::SecretNotFound { .. }, Purpose::Password) => "PasswordSecretNotFound",
            (SecretProblem::KeyMissing { .. }, Purpose::Password) => "PasswordKeyMissing",
            (SecretProblem::SecretForbidden { .. }, Purpose::Credentials) => {
                "CredentialsSecretForbidden"
            }
            (SecretProblem::SecretForbidden { .. }, Purpose::Password) => "PasswordSecretForbidden",
            (SecretProblem::HoldForbidden { .. }, _) => "CredentialsSecretForbidden",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Credentials,
    Password,
}

/// Credentials, and the Secret they came from (only its metadata: the values stay in
/// `credentials`); `None` for the operator's defaults, which no resource holds.
pub struct Resolved {
    pub credentials: Credentials,
    pub secret: Option<ObjectMeta>,
}

/// The credentials a resource in `namespace` names with `reference` (its Secret), or the
/// operator's defaults when it names none. Any kind of resource with a credentials reference
/// resolves them here.
pub async fn resolve_credentials(
    kube: &kube::Client,
    reference: Option<&SecretRef>,
    namespace: &str,
    defaults: Option<&Credentials>,
) -> Result<Result<Resolved, SecretProblem>, kube::Error> {
    let Some(reference) = reference else {
        return Ok(defaults
            .cloned()
            .map(|credentials| Resolved {
                credentials,
                secret: None,
            })
            .ok_or(SecretProblem::NoDefaultCredentials));
    };
    let secret = match read_secret(kube, namespace, &reference.name).await? {
        Ok(secret) => secret,
        Err(problem) => return Ok(Err(problem)),
    };
    let field = |key: &str| secret_value(&secret, key);
    let missing = |key: &str| SecretProblem::KeyMissing {
        namespace: namespace.to_string(),
        name: reference.name.clone(),
        key: key.to_string(),
    };
    let Some(secret_id) = field(KEY_SECRET_ID) else {
        return Ok(Err(missing(KEY_SECRET_ID)));
    };
    let Some(secret_key) = field(KEY_SECRET_KEY) else {
        return Ok(Err(missing(KEY_SECRET_KEY)));
    };
    let mut credentials = Credentials::new(secret_id, SecretString::new(secret_key));
    if let Some(token) = field(KEY_TOKEN) {
        credentials = credentials.with_token(SecretString::new(token));
    }
    Ok(Ok(Resolved {
        credentials,
        secret: Some(secret.metadata),
    }))
}

/// The login password named by `reference`.
pub async fn resolve_password(
    kube: &kube::Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<Result<SecretString, SecretProblem>, kube::Error> {
    let secret = match read_secret(kube, namespace, &reference.name).await? {
        Ok(secret) => secret,
        Err(problem) => return Ok(Err(problem)),
    };
    Ok(secret_value(&secret, &reference.key)
        .map(SecretString::new)
        .ok_or_else(|| SecretProblem::KeyMissing {
            namespace: namespace.to_string(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        }))
}

/// The Secret `namespace/name`; its absence and an RBAC denial are problems a person must
/// fix (they become conditions), any other API error is retried.
async fn read_secret(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Result<Secret, SecretProblem>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let read = denied_as(secrets.get_opt(name).await, |denial| {
        SecretProblem::SecretForbidden {
            namespace: namespace.to_string(),
            name: name.to_string(),
            denial,
        }
    })?;
    Ok(read.and_then(|found| {
        found.ok_or_else(|| SecretProblem::SecretNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }))
}

/// An RBAC denial (403) as the `problem` it means for the resource, with the API server's
/// message; any other API error stays an error, retried.
pub fn denied_as<T>(
    result: Result<T, kube::Error>,
    problem: impl FnOnce(String) -> SecretProblem,
) -> Result<Result<T, SecretProblem>, kube::Error> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Err(problem(status.message))),
        Err(error) => Err(error),
    }
}

/// A non-empty value from `data` or `stringData`, trimmed of the newline `echo` leaves.
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok());
    let from_string_data = || {
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
    };
    from_data
        .or_else(from_string_data)
        .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn secret_values_come_from_data_trimmed() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("secretId".to_string(), ByteString(b"AKIDx\n".to_vec())),
                ("empty".to_string(), ByteString(Vec::new())),
            ])),
            ..Default::default()
        };
        assert_eq!(secret_value(&secret, "secretId").as_deref(), Some("AKIDx"));
        assert_eq!(secret_value(&secret, "empty"), None);
        assert_eq!(secret_value(&secret, "absent"), None);
    }

    #[test]
    fn problems_name_the_secret_and_key() {
        let p = SecretProblem::KeyMissing {
            namespace: "team-a".into(),
            name: "tc".into(),
            key: "secretKey".into(),
        };
        assert_eq!(
            p.to_string(),
            "Secret team-a/tc has no key \"secretKey\" (or it is empty)"
        );
        assert_eq!(p.reason(Purpose::Credentials), "CredentialsKeyMissing");
        assert_eq!(p.reason(Purpose::Password), "PasswordKeyMissing");
    }

    #[test]
    fn a_forbidden_secret_names_the_missing_permission() {
        let p = SecretProblem::SecretForbidden {
            namespace: "team-b".into(),
            name: "tc".into(),
            denial: "secrets \"tc\" is forbidden: User \"system:serviceaccount:ops:op\" \
                     cannot get resource \"secrets\" in API group \"\" in the namespace \"team-b\""
                .into(),
        };
        let message = p.to_string();
        assert!(
            message.starts_with(
                "the operator may not read Secret team-b/tc: secrets \"tc\" is forbidden"
            ),
            "{message}"
        );
        assert!(
            message.contains("`get` on `secrets` in namespace team-b"),
            "{message}"
        );
        assert_eq!(p.reason(Purpose::Credentials), "CredentialsSecretForbidden");
        assert_eq!(p.reason(Purpose::Password), "PasswordSecretForbidden");
    }

    #[test]
    fn a_secret_that_may_not_be_held_names_the_patch_permission() {
        let p = SecretProblem::HoldForbidden {
            namespace: "team-b".into(),
            name: "tc".into(),
            denial: "cannot patch resource \"secrets\"".into(),
        };
        let message = p.to_string();
        assert!(
            message.starts_with("the operator may not hold Secret team-b/tc"),
            "{message}"
        );
        assert!(
            message.contains("`patch` on `secrets` in namespace team-b"),
            "{message}"
        );
        assert_eq!(p.reason(Purpose::Credentials), "CredentialsSecretForbidden");
    }
}
