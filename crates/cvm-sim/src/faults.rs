//! Injected faults: error codes, added latency and dropped connections, per action,
//! with a firing probability and an optional number of firings.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// A fault rule as written in the config file and posted to `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    /// The action it applies to; absent or `*` means every action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Error code to answer with (HTTP 200 envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Probability in [0, 1] that a matching request is hit.
    #[serde(default = "always")]
    pub rate: f64,
    /// How many times it may fire; absent means without end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Delay added before the request is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Close the connection without any response.
    #[serde(default)]
    pub drop_connection: bool,
    /// Handle the request, then hold the answer this long: the request takes effect (an
    /// instance is created) while its answer is still on the way, which is where a client
    /// that crashes or times out loses track of what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_delay_ms: Option<u64>,
}

fn always() -> f64 {
    1.0
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("fault rate {} is not in [0, 1]", self.rate));
        }
        let kinds = usize::from(self.code.is_some())
            + usize::from(self.latency_ms.is_some())
            + usize::from(self.drop_connection)
            + usize::from(self.response_delay_ms.is_some());
        if kinds != 1 {
            return Err(
                "a fault needs exactly one of `code`, `latencyMs`, `responseDelayMs` or `dropConnection: true`"
                    .into(),
            );
        }
        if self.code.as_deref() == Some("") {
            return Err("fault code must not be empty".into());
        }
        Ok(())
    }

    fn matches(&self, action: &str) -> bool {
        match self.action.as_deref() {
            None | Some("*") => true,
            Some(a) => a == action,
        }
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default, PartialEq)]
pub struct FaultOutcome {
    pub latency: Duration,
    /// Added after the request was handled, before the answer is sent.
    pub response_delay: Duration,
    pub effect: Option<FaultEffect>,
}

#[derive(Debug, PartialEq)]
pub enum FaultEffect {
    Error(ApiError),
    DropConnection,
}

#[derive(Debug, Default)]
pub struct FaultTable {
    rules: Vec<FaultSpec>,
}

impl FaultTable {
    pub fn new(rules: Vec<FaultSpec>) -> Self {
        Self { rules }
    }

    pub fn add(&mut self, rule: FaultSpec) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn rules(&self) -> &[FaultSpec] {
        &self.rules
    }

    /// Rolls every rule matching `action`; latencies add up, the first error or drop wins.
    pub fn decide(&mut self, action: &str, rng: &mut impl Rng) -> FaultOutcome {
        let mut outcome = FaultOutcome::default();
        for rule in &mut self.rules {
            if !rule.matches(action) || rule.count == Some(0) {
                continue;
            }
            let is_effect = rule.code.is_some() || rule.drop_connection;
            if is_effect && outcome.effect.is_some() {
                continue;
            }
            if rule.rate < 1.0 && rng.random::<f64>() >= rule.rate {
                continue;
            }
            if let Some(count) = rule.count.as_mut() {
                *count -= 1;
            }
            if let Some(ms) = rule.latency_ms {
                outcome.latency += Duration::from_millis(ms);
            } else if let Some(ms) = rule.response_delay_ms {
                outcome.response_delay += Duration::from_millis(ms);
            } else if rule.drop_connection {
                outcome.effect = Some(FaultEffect::DropConnection);
            } else if let Some(code) = &rule.code {
                let message = rule
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("Injected fault {code} (cvm-sim)."));
                outcome.effect = Some(FaultEffect::Error(ApiError::new(code.clone(), message)));
            }
        }
        self.rules.retain(|r| r.count != Some(0));
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_rule(action: &str, count: Option<u32>, rate: f64) -> FaultSpec {
        FaultSpec {
            action: Some(action.into()),
            code: Some("InternalError".into()),
            message: None,
            rate,
            count,
            latency_ms: None,
            drop_connection: false,
            response_delay_ms: None,
        }
    }

    #[test]
    fn counted_fault_fires_exactly_count_times_and_only_for_its_action() {
        let mut table = FaultTable::new(vec![error_rule("RunInstances", Some(2), 1.0)]);
        let mut rng = rand::rng();
        assert!(table.decide("DescribeInstances", &mut rng).effect.is_none());
        for _ in 0..2 {
            let outcome = table.decide("RunInstances", &mut rng);
            assert!(
                matches!(outcome.effect, Some(FaultEffect::Error(ref e)) if e.code == "InternalError")
            );
        }
        assert!(table.decide("RunInstances", &mut rng).effect.is_none());
        assert!(table.rules().is_empty());
    }

    #[test]
    fn zero_rate_never_fires_and_latencies_add_up() {
        let mut table = FaultTable::new(vec![error_rule("RunInstances", None, 0.0)]);
        let latency = |ms| FaultSpec {
            action: None,
            code: None,
            message: None,
            rate: 1.0,
            count: None,
            latency_ms: Some(ms),
            drop_connection: false,
            response_delay_ms: None,
        };
        table.add(latency(30));
        table.add(latency(20));
        let mut rng = rand::rng();
        for _ in 0..100 {
            let outcome = table.decide("RunInstances", &mut rng);
            assert!(outcome.effect.is_none());
            assert_eq!(outcome.latency, Duration::from_millis(50));
        }
    }

    #[test]
    fn validation_requires_exactly_one_kind_and_a_rate_in_range() {
        assert!(error_rule("RunInstances", None, 1.5).validate().is_err());
        let mut both = error_rule("RunInstances", None, 1.0);
        both.drop_connection = true;
        assert!(both.validate().is_err());
        assert!(error_rule("RunInstances", None, 0.5).validate().is_ok());
    }
}
