//! Holding a credentials Secret while a CvmInstance may still need it, the way Kubernetes'
//! pvc-protection holds a PersistentVolumeClaim a Pod uses.
//!
//! Without it, deleting a namespace deletes the Secret alongside the CvmInstance, and the
//! operator can no longer sign the calls that terminate the instance and confirm it gone: the
//! namespace stays Terminating, or the instance keeps running. So a CvmInstance puts
//! [`CREDENTIALS_IN_USE`] on the Secret it names before its first cloud call with it, and
//! the last CvmInstance of the namespace naming it takes it off when it lets go of its own
//! finalizer. The operator's default credentials come from its environment: nothing to hold.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Watched;
use super::context::Context;
use super::credentials::{SecretProblem, denied_as};
use super::finalizer::{self, has_finalizer};
use super::step::releasing;
use crate::api::{CREDENTIALS_IN_USE, CvmInstance};

/// What a reconcile learned about the credentials Secret it read (no values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    pub name: String,
    /// It carries [`CREDENTIALS_IN_USE`].
    pub held: bool,
    /// Someone deleted it; it stays while finalizers remain.
    pub deleting: bool,
}

impl SecretUse {
    pub fn of(meta: &ObjectMeta) -> Self {
        Self {
            name: meta.name.clone().unwrap_or_default(),
            held: meta
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == CREDENTIALS_IN_USE),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

/// Puts [`CREDENTIALS_IN_USE`] on the Secret as read (`meta`); a guarded patch, so it fails
/// rather than overwrite a finalizer list that changed meanwhile. An RBAC denial is a problem
/// a person must fix (a condition); any other API error is retried.
pub async fn hold(
    kube: &kube::Client,
    namespace: &str,
    meta: &ObjectMeta,
) -> Result<Result<(), SecretProblem>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let secret = Secret {
        metadata: meta.clone(),
        ..Secret::default()
    };
    let held = finalizer::add(&secrets, &secret, CREDENTIALS_IN_USE)
        .await
        .map(|_| ());
    denied_as(held, |denial| SecretProblem::HoldForbidden {
        namespace: namespace.to_string(),
        name: secret.name_any(),
        denial,
    })
}

/// Takes [`CREDENTIALS_IN_USE`] off Secret `name`, if it is still there.
pub async fn release(kube: &kube::Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    match secrets.get_metadata_opt(name).await? {
        Some(meta) => {
            let secret = Secret {
                metadata: meta.metadata,
                ..Secret::default()
            };
            finalizer::remove(&secrets, &secret, CREDENTIALS_IN_USE).await
        }
        None => Ok(()),
    }
}

/// Whether `instance` still needs Secret `secret`: it names it and has not let go yet. One
/// without the finalizer has made no cloud call (it adds the finalizer first) and holds the
/// Secret itself before its first; one recorded as releasing needs no cloud call any more.
pub fn needs(instance: &CvmInstance, secret: &str) -> bool {
    let names_it = instance
        .spec
        .credentials_secret_ref
        .as_ref()
        .is_some_and(|r| r.name == secret);
    let stored = instance.status.clone().unwrap_or_default();
    names_it && has_finalizer(instance) && !releasing(&stored)
}

/// Whether a CvmInstance of `namespace` other than `me` (a UID) still needs Secret `secret`.
///
/// The shared cache names the candidates, but it may lag behind: each is read again from the
/// API server before it keeps the Secret (a stale "still needs it" on both sides of two
/// simultaneous deletions would keep it forever), and a release is decided only on a fresh
/// list (the cache may not have one created a moment ago).
pub async fn needed_by_another(
    ctx: &Context,
    namespace: &str,
    secret: &str,
    me: &str,
) -> Result<bool, kube::Error> {
    let another = |i: &CvmInstance| {
        i.namespace().as_deref() == Some(namespace)
            && i.uid().as_deref() != Some(me)
            && needs(i, secret)
    };
    let api: Api<Watched> = Api::namespaced(ctx.kube.clone(), namespace);
    let candidates: Vec<String> = ctx
        .instances
        .as_ref()
        .map(|cache| {
            cache
                .state()
                .iter()
                .filter_map(|w| w.0.as_ref().ok())
                .filter(|i| another(i))
                .map(|i| i.name_any())
                .collect()
        })
        .unwrap_or_default();
    for name in candidates {
        let fresh = api.get_opt(&name).await?;
        if fresh
            .as_ref()
            .and_then(|w| w.0.as_ref().ok())
            .is_some_and(another)
        {
            return Ok(true);
        }
    }
    let all = api.list(&ListParams::default()).await?;
    Ok(all
        .items
        .iter()
        .filter_map(|w| w.0.as_ref().ok())
        .any(another))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FINALIZER;
    use crate::controller::conditions::Health;
    use crate::controller::step::{RELEASING, table};

    fn instance(secret: Option<&str>, finalizer: bool) -> CvmInstance {
        let reference = secret.map(|name| serde_json::json!({"name": name}));
        let spec = table::spec(serde_json::json!({ "credentialsSecretRef": reference }));
        let mut i = CvmInstance::new("web", spec);
        if finalizer {
            i.metadata.finalizers = Some(vec![FINALIZER.into()]);
        }
        i
    }

    #[test]
    fn an_instance_needs_the_secret_it_names_until_it_lets_go() {
        assert!(needs(&instance(Some("tc"), true), "tc"));
        assert!(
            !needs(&instance(Some("tc"), true), "other"),
            "another Secret"
        );
        assert!(!needs(&instance(None, true), "tc"), "default credentials");
        assert!(
            !needs(&instance(Some("tc"), false), "tc"),
            "no finalizer: no cloud call made yet, or already let go"
        );
        let mut releasing = instance(Some("tc"), true);
        let health = Health::progressing(RELEASING, "ins-1 is gone");
        releasing.status = Some(crate::api::CvmInstanceStatus {
            conditions: Some(health.conditions(&[], Some(1), k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        });
        assert!(!needs(&releasing, "tc"), "recorded as releasing");
    }

    #[test]
    fn the_hold_is_read_from_the_secret_metadata() {
        let held = ObjectMeta {
            name: Some("tc".into()),
            finalizers: Some(vec!["other".into(), CREDENTIALS_IN_USE.into()]),
            ..Default::default()
        };
        let deleted = ObjectMeta {
            name: Some("tc".into()),
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            ..Default::default()
        };
        let read = |meta: &ObjectMeta| {
            let u = SecretUse::of(meta);
            (u.name, u.held, u.deleting)
        };
        assert_eq!(read(&held), ("tc".into(), true, false));
        assert_eq!(read(&deleted), ("tc".into(), false, true));
    }
}
