//! Publishing `events.k8s.io/v1` Events.
//!
//! kube's `Recorder` keeps every Event it sent in memory for six minutes, to fold repeats
//! into a series. The controller publishes only on transitions, so there is nothing to fold,
//! and at 10,000 resources that cache was the largest part of the operator's memory. This
//! publisher keeps nothing: one create call per Event.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

pub const CONTROLLER: &str = "cvm-operator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Clone)]
pub struct EventPublisher {
    client: kube::Client,
    /// `reportingInstance`: the Pod name, so HA replicas can be told apart.
    instance: String,
}

impl EventPublisher {
    pub fn new(client: kube::Client, instance: String) -> Self {
        Self { client, instance }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
        action: &str,
    ) -> Result<(), kube::Error> {
        let event = build(
            regarding,
            type_,
            reason,
            note,
            action,
            &self.instance,
            Timestamp::now(),
        );
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        Api::<Event>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

fn build(
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
    action: &str,
    instance: &str,
    now: Timestamp,
) -> Event {
    let name: String = regarding
        .name
        .as_deref()
        .unwrap_or("cvminstance")
        .chars()
        .take(200)
        .collect();
    Event {
        metadata: ObjectMeta {
            // `<object>.<time in hex>`, the convention of client-go and kube's Recorder;
            // a trailing dot for generateName would not be a valid name.
            name: Some(format!(
                "{name}.{:x}{:04x}",
                now.as_nanosecond(),
                rand::random::<u16>()
            )),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_string(),
        ),
        // Limits enforced by the API server: reason and action 128 characters, note 1 KiB.
        reason: Some(reason.chars().take(128).collect()),
        action: Some(action.chars().take(128).collect()),
        note: Some(truncate_bytes(note, 1024)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(CONTROLLER.to_string()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        ..Default::default()
    }
}

/// At most `max` bytes, cut at a character boundary.
fn truncate_bytes(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ObjectReference {
        ObjectReference {
            api_version: Some("cvm-operator.io/v1alpha1".into()),
            kind: Some("CvmInstance".into()),
            name: Some("web-1".into()),
            namespace: Some("team-a".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn event_has_the_fields_events_v1_requires() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let e = build(
            &reference(),
            EventType::Warning,
            "LaunchFailed",
            "boom",
            "Reconcile",
            "pod-a",
            now,
        );
        let name = e.metadata.name.clone().unwrap();
        assert!(
            name.starts_with("web-1.") && name.len() > "web-1.".len(),
            "{name}"
        );
        let other = build(
            &reference(),
            EventType::Warning,
            "LaunchFailed",
            "boom",
            "Reconcile",
            "pod-a",
            now,
        );
        assert_ne!(
            other.metadata.name.unwrap(),
            name,
            "two Events in the same nanosecond"
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(e.event_time, Some(MicroTime(now)));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("LaunchFailed"));
        assert_eq!(e.reporting_controller.as_deref(), Some("cvm-operator"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-a"));
        assert_eq!(e.regarding.unwrap().uid.as_deref(), Some("u-1"));
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = "界".repeat(500); // 1500 bytes
        let cut = truncate_bytes(&note, 1024);
        assert!(cut.len() <= 1024 && cut.len() > 1020);
        assert!(cut.chars().all(|c| c == '界'));
    }
}
