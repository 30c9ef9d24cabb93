//! Per-account money and quotas, and capacity per zone and instance type.

use std::collections::HashMap;

use super::config::{AccountConfig, CapacityEntry, StockPool};

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

/// Instances that may still be launched per (zone, instance type), in one stock pool or
/// in both; absent = unlimited. Launches use it up and terminations do not give it back, so
/// a sold-out pair stays sold out until an operator of the simulator changes it.
#[derive(Debug, Default)]
pub struct Capacity {
    /// `None` pool: the entry limits both pools.
    remaining: HashMap<(String, String, Option<StockPool>), u32>,
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
        let key = (
            entry.zone.clone(),
            entry.instance_type.clone(),
            entry.charge_type,
        );
        match entry.available {
            Some(n) => {
                self.remaining.insert(key, n);
            }
            None => {
                self.remaining.remove(&key);
            }
        }
    }

    /// What is left for `pool`: the smaller of its own entry and the shared one; `None`
    /// when neither limits it.
    pub fn remaining(&self, zone: &str, instance_type: &str, pool: StockPool) -> Option<u32> {
        [None, Some(pool)]
            .into_iter()
            .filter_map(|p| {
                self.remaining
                    .get(&(zone.to_string(), instance_type.to_string(), p))
                    .copied()
            })
            .min()
    }

    /// How many of `wanted` can be launched now from `pool`.
    pub fn available(&self, zone: &str, instance_type: &str, pool: StockPool, wanted: u32) -> u32 {
        self.remaining(zone, instance_type, pool)
            .map_or(wanted, |n| n.min(wanted))
    }

    /// Launches draw from the pool's own entry and from the shared one.
    pub fn consume(&mut self, zone: &str, instance_type: &str, pool: StockPool, count: u32) {
        for p in [None, Some(pool)] {
            if let Some(n) =
                self.remaining
                    .get_mut(&(zone.to_string(), instance_type.to_string(), p))
            {
                *n = n.saturating_sub(count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pool: Option<StockPool>, available: Option<u32>) -> CapacityEntry {
        CapacityEntry {
            zone: "z".into(),
            instance_type: "t".into(),
            charge_type: pool,
            available,
        }
    }

    #[test]
    fn capacity_is_unlimited_until_set_and_used_up_by_launches() {
        let mut c = Capacity::default();
        assert_eq!(c.available("z", "t", StockPool::Regular, 7), 7);
        assert_eq!(c.remaining("z", "t", StockPool::Regular), None);
        c.set(&entry(None, Some(3)));
        assert_eq!(c.available("z", "t", StockPool::Regular, 7), 3);
        c.consume("z", "t", StockPool::Spot, 2);
        assert_eq!(c.available("z", "t", StockPool::Regular, 7), 1, "shared");
        assert_eq!(c.available("z", "other", StockPool::Regular, 7), 7);
        c.set(&entry(None, None));
        assert_eq!(c.available("z", "t", StockPool::Spot, 7), 7);
    }

    #[test]
    fn spot_sells_out_apart_from_regular_stock() {
        let mut c = Capacity::default();
        c.set(&entry(Some(StockPool::Spot), Some(0)));
        assert_eq!(c.available("z", "t", StockPool::Spot, 5), 0);
        assert_eq!(c.available("z", "t", StockPool::Regular, 5), 5);
        c.set(&entry(None, Some(4)));
        c.set(&entry(Some(StockPool::Spot), Some(10)));
        assert_eq!(
            c.remaining("z", "t", StockPool::Spot),
            Some(4),
            "the smaller"
        );
        c.consume("z", "t", StockPool::Spot, 1);
        assert_eq!(c.remaining("z", "t", StockPool::Spot), Some(3));
        assert_eq!(c.remaining("z", "t", StockPool::Regular), Some(3));
        c.set(&entry(None, None));
        assert_eq!(c.remaining("z", "t", StockPool::Spot), Some(9));
        c.set(&entry(Some(StockPool::Spot), None));
        assert_eq!(c.remaining("z", "t", StockPool::Spot), None, "restored");
    }
}
