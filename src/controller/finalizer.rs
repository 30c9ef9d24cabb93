//! Adding and removing a finalizer with guarded JSON patches: the resource's own
//! ([`FINALIZER`]) and the one that holds a credentials Secret in use (`secret_use`).
//!
//! Written here rather than with kube's `finalizer()` helper because a deletion that is still
//! waiting for its instance to go away is a normal state, not an error: the helper would only
//! keep the finalizer if cleanup returned an error. Generic over the resource, so that every
//! kind the operator manages holds its cloud resources the same way.

use json_patch::{AddOperation, PatchOperation, RemoveOperation, TestOperation};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::FINALIZER;

pub fn has_finalizer<K: Resource>(obj: &K) -> bool {
    carries(obj, FINALIZER)
}

pub fn carries<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.finalizers().iter().any(|f| f == finalizer)
}

/// Adds `finalizer`; the `test` makes the patch fail if the list changed meanwhile.
pub async fn add<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let ops = match obj.meta().finalizers.as_ref() {
        None => vec![
            PatchOperation::Test(TestOperation {
                path: "/metadata/finalizers".parse().expect("static path"),
                value: Value::Null,
            }),
            PatchOperation::Add(AddOperation {
                path: "/metadata/finalizers".parse().expect("static path"),
                value: serde_json::json!([finalizer]),
            }),
        ],
        Some(list) => vec![
            PatchOperation::Test(TestOperation {
                path: "/metadata/finalizers".parse().expect("static path"),
                value: serde_json::json!(list),
            }),
            PatchOperation::Add(AddOperation {
                path: "/metadata/finalizers/-".parse().expect("static path"),
                value: Value::from(finalizer),
            }),
        ],
    };
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(json_patch::Patch(ops)),
    )
    .await
}

/// Removes `finalizer`, letting Kubernetes delete the object once it carries no other.
pub async fn remove<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(index) = obj.finalizers().iter().position(|f| f == finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let ops = vec![
        PatchOperation::Test(TestOperation {
            path: path.parse().expect("index path"),
            value: Value::from(finalizer),
        }),
        PatchOperation::Remove(RemoveOperation {
            path: path.parse().expect("index path"),
        }),
    ];
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(json_patch::Patch(ops)),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: someone else finished the deletion.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
