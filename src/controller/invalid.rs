//! Objects the operator cannot read: a CvmInstance whose stored form does not deserialize
//! (edited by hand through the status subresource, or written under a newer schema).
//!
//! The watch reads every object through `DeserializeGuard`, so one such object neither breaks
//! the list for all the others nor retries in a loop. It is reported once per change: a
//! Stalled condition and a Warning Event saying what is wrong, written without reading the
//! object back into the Rust type. Nothing is done in the cloud for it, not even on deletion:
//! without a readable spec and status the operator cannot know what it would be touching.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::{Api, Resource};
use tracing::warn;

use super::conditions::Health;
use super::context::Context;
use super::error::Error;
use super::events::EventType;
use crate::api::CvmInstance;

pub const REASON: &str = "InvalidObject";

/// Reports `invalid` on the object itself and waits for it to change.
pub async fn report(invalid: &InvalidObject, ctx: &Context) -> Result<Action, Error> {
    let meta = &invalid.metadata;
    let (Some(name), Some(namespace)) = (meta.name.clone(), meta.namespace.clone()) else {
        return Ok(Action::await_change());
    };
    // The error may quote a value (user data, say); it goes to status, Events and logs
    // without it.
    let error = without_quoted_values(&invalid.error);
    warn!(%namespace, cvminstance = %name, %error, "cannot read the object");
    let message = format!(
        "the operator cannot read this object: {error}; fix or remove the field (nothing is done in the cloud until then)"
    );
    let conditions =
        Health::stalled(REASON, message.clone()).conditions(&[], meta.generation, ctx.clock.now());
    // A merge patch through the dynamic API: the typed API would have to read the answer
    // back into a CvmInstance, which is exactly what fails.
    let resource = ApiResource::erase::<CvmInstance>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.kube.clone(), &namespace, &resource);
    let body = serde_json::json!({"status": {"conditions": conditions}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
        .await?;
    let regarding = ObjectReference {
        api_version: Some(CvmInstance::api_version(&()).into_owned()),
        kind: Some(CvmInstance::kind(&()).into_owned()),
        name: Some(name),
        namespace: Some(namespace),
        uid: meta.uid.clone(),
        ..ObjectReference::default()
    };
    if let Err(e) = ctx
        .events
        .publish(
            &regarding,
            EventType::Warning,
            REASON,
            &message,
            "Reconcile",
        )
        .await
    {
        warn!(error = %e, "could not publish Event");
    }
    Ok(Action::await_change())
}

/// `text` with every double-quoted value replaced by `"…"` (escaped quotes stay inside).
fn without_quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        out.push('…');
        let mut escaped = false;
        for inner in chars.by_ref() {
            match inner {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => break,
                _ => escaped = false,
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_hidden_and_the_rest_kept() {
        assert_eq!(
            without_quoted_values(r#"Invalid type string "many". Expected i32"#),
            r#"Invalid type string "…". Expected i32"#
        );
        assert_eq!(
            without_quoted_values(r#"invalid value "pass\"word" for "x""#),
            r#"invalid value "…" for "…""#
        );
        assert_eq!(
            without_quoted_values("missing field `spec`"),
            "missing field `spec`"
        );
    }
}
