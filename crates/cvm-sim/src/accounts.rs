//! Per-account money and quotas, and capacity per zone and instance type.

use std::collections::HashMap;

use super::config::{AccountConfig, CapacityEntry};

#[derive(Debug)]
pub struct AccountState {
    pub secret_key: String,
    pub token: Option<String>,
    pub balance: f64,
    /// One hour's cost of each live pay-as-you-go or spot instance.
    pub frozen: f64,
    pub instance_quota: u32,
    pub spot_quota: u32,
    /// Instances not yet gone (any state), and the spot ones among them.
    pub instances: u32,
    pub spot_instances: u32,
}

impl AccountState {
    pub fn from_config(config: &AccountConfig) -> Self {
        Self {
            secret_key: config.secret_key.clone(),
            token: config.token.clone(),
            balance: config.balance,
            frozen: 0.0,
            instance_quota: config.instance_quota,
            spot_quota: config.spot_quota,
            instances: 0,
            spot_instances: 0,
        }
    }

    pub fn available_balance(&self) -> f64 {
        self.balance - self.frozen
    }
}

pub fn accounts_from_config(accounts: &[AccountConfig]) -> HashMap<String, AccountState> {
    accounts
        .iter()
        .map(|a| (a.secret_id.clone(), AccountState::from_config(a)))
        .collect()
}

/// Instances that may still be launched per (zone, instance type); absent = unlimited.
/// Launches use it up and terminations do not give it back, so a sold-out pair stays
/// sold out until an operator of the simulator changes it.
#[derive(Debug, Default)]
pub struct Capacity {
    remaining: HashMap<(String, String), u32>,
}

impl Capacity {
    pub fn from_config(entries: &[CapacityEntry]) -> Self {
        let mut capacity = Self::default();
        for entry in entries {
            capacity.set(entry);
        }
        capacity
    }

    pub fn set(&mut self, entry: &CapacityEntry) {
        let key = (entry.zone.clone(), entry.instance_type.clone());
        match entry.available {
            Some(n) => {
                self.remaining.insert(key, n);
            }
            None => {
                self.remaining.remove(&key);
            }
        }
    }

    /// How many of `wanted` can be launched now.
    pub fn available(&self, zone: &str, instance_type: &str, wanted: u32) -> u32 {
        self.remaining
            .get(&(zone.to_string(), instance_type.to_string()))
            .map_or(wanted, |n| (*n).min(wanted))
    }

    pub fn consume(&mut self, zone: &str, instance_type: &str, count: u32) {
        if let Some(n) = self
            .remaining
            .get_mut(&(zone.to_string(), instance_type.to_string()))
        {
            *n = n.saturating_sub(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_unlimited_until_set_and_used_up_by_launches() {
        let mut c = Capacity::default();
        assert_eq!(c.available("z", "t", 7), 7);
        c.set(&CapacityEntry {
            zone: "z".into(),
            instance_type: "t".into(),
            available: Some(3),
        });
        assert_eq!(c.available("z", "t", 7), 3);
        c.consume("z", "t", 2);
        assert_eq!(c.available("z", "t", 7), 1);
        assert_eq!(c.available("z", "other", 7), 7);
        c.set(&CapacityEntry {
            zone: "z".into(),
            instance_type: "t".into(),
            available: None,
        });
        assert_eq!(c.available("z", "t", 7), 7);
    }
}
