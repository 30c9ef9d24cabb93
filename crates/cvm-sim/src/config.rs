//! The simulator's configuration file (`--config path`, JSON, camelCase) and its defaults.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::catalogue::{self, RegionSpec};
use super::faults::FaultSpec;

pub const DEFAULT_SECRET_ID: &str = "AKIDsimulator0000000000000000000000";
pub const DEFAULT_SECRET_KEY: &str = "simulatorsecretkey000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("config is not valid: {0}")]
    Invalid(String),
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    pub accounts: Vec<AccountConfig>,
    pub timing: Timing,
    /// Requests per second per account and action; 0 means unlimited.
    pub rate_limits: HashMap<String, u32>,
    /// Instances that can still be launched per zone and type; a pair not listed is unlimited.
    pub capacity: Vec<CapacityEntry>,
    pub faults: Vec<FaultSpec>,
    /// Replaces the built-in catalogue of public regions and zones (catalogue.rs).
    pub regions: Option<Vec<RegionSpec>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            accounts: vec![AccountConfig::default()],
            timing: Timing::default(),
            rate_limits: default_rate_limits(),
            capacity: Vec::new(),
            faults: Vec::new(),
            regions: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("accounts", &self.accounts)
            .field("timing", &self.timing)
            .field("rate_limits", &self.rate_limits)
            .field("capacity", &self.capacity)
            .field("faults", &self.faults)
            .field("regions", &self.regions.as_ref().map(Vec::len))
            .finish()
    }
}

/// Tencent's documented default rate limits for the actions the simulator serves.
pub fn default_rate_limits() -> HashMap<String, u32> {
    [
        ("RunInstances", 10),
        ("DescribeInstances", 40),
        ("DescribeInstancesStatus", 40),
        ("TerminateInstances", 10),
        ("DescribeRegions", 20),
        ("DescribeZones", 20),
        ("DescribeZoneInstanceConfigInfos", 40),
        // Day-2 actions: 10 per second each (reference §6).
        ("StartInstances", 10),
        ("StopInstances", 10),
        ("RebootInstances", 10),
        ("ModifyInstancesAttribute", 10),
        ("ModifyInstancesProject", 10),
        ("ResetInstancesInternetMaxBandwidth", 10),
        ("ResetInstancesType", 10),
        ("ResetInstancesPassword", 10),
        ("AssociateInstancesKeyPairs", 10),
        ("DisassociateInstancesKeyPairs", 10),
        ("ResizeInstanceDisks", 10),
        ("ResetInstance", 10),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl SimConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        let config: SimConfig =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
                path: display,
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.accounts.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one account is needed".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for account in &self.accounts {
            if account.secret_id.is_empty() || account.secret_key.is_empty() {
                return Err(ConfigError::Invalid(
                    "every account needs a secretId and a secretKey".into(),
                ));
            }
            if !seen.insert(account.secret_id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "secretId {} is listed twice",
                    account.secret_id
                )));
            }
        }
        for fault in &self.faults {
            fault.validate().map_err(ConfigError::Invalid)?;
        }
        if let Some(regions) = &self.regions {
            catalogue::validate(regions).map_err(ConfigError::Invalid)?;
        }
        self.timing.validate().map_err(ConfigError::Invalid)
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountConfig {
    pub secret_id: String,
    pub secret_key: String,
    /// Session token that requests signed with this key must carry in `X-TC-Token`.
    pub token: Option<String>,
    /// Account balance in CNY; pay-as-you-go launches freeze one hour's cost from it.
    pub balance: f64,
    /// Instances the account may hold at once (any billing mode).
    pub instance_quota: u32,
    /// Spot instances the account may hold at once.
    pub spot_quota: u32,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            secret_id: DEFAULT_SECRET_ID.into(),
            secret_key: DEFAULT_SECRET_KEY.into(),
            token: None,
            balance: 1_000_000.0,
            instance_quota: 100_000,
            spot_quota: 100_000,
        }
    }
}

// Secrets stay out of Debug output so a logged config never leaks a key.
impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("balance", &self.balance)
            .field("instance_quota", &self.instance_quota)
            .field("spot_quota", &self.spot_quota)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timing {
    /// PENDING → RUNNING (or LAUNCH_FAILED).
    pub pending_seconds: f64,
    /// RUNNING → public IP shown, for instances with InternetMaxBandwidthOut > 0.
    pub public_ip_delay_seconds: f64,
    /// TERMINATING → gone from every answer.
    pub terminating_seconds: f64,
    /// How long a modify action (Start, Stop, ModifyInstancesAttribute, ...) stays
    /// `LatestOperationState` OPERATING before it takes effect.
    pub operation_seconds: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            pending_seconds: 2.0,
            public_ip_delay_seconds: 1.0,
            terminating_seconds: 2.0,
            operation_seconds: 1.0,
        }
    }
}

impl Timing {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("pendingSeconds", self.pending_seconds),
            ("publicIpDelaySeconds", self.public_ip_delay_seconds),
            ("terminatingSeconds", self.terminating_seconds),
            ("operationSeconds", self.operation_seconds),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{name} must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityEntry {
    pub zone: String,
    pub instance_type: String,
    /// The stock this entry limits; absent limits both (spot and regular launches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_type: Option<StockPool>,
    /// `None` makes the entry unlimited again.
    pub available: Option<u32>,
}

/// Spot capacity is sold apart from the regular one, so spot can sell out in a zone while
/// pay-as-you-go (and prepaid, which draws from the same regular stock) remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StockPool {
    #[serde(rename = "POSTPAID_BY_HOUR")]
    Regular,
    #[serde(rename = "SPOTPAID")]
    Spot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_config_has_the_default_account_and_documented_limits() {
        let config: SimConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.accounts[0].secret_id, DEFAULT_SECRET_ID);
        assert_eq!(config.rate_limits["RunInstances"], 10);
        assert_eq!(config.rate_limits["DescribeInstances"], 40);
        assert_eq!(config.rate_limits["DescribeZones"], 20);
        assert_eq!(config.rate_limits["DescribeZoneInstanceConfigInfos"], 40);
        assert_eq!(config.timing.pending_seconds, 2.0);
        assert!(
            config.regions.is_none(),
            "the built-in catalogue by default"
        );
        config.validate().unwrap();
    }

    #[test]
    fn camel_case_fields_parse() {
        let config: SimConfig = serde_json::from_str(
            r#"{"accounts":[{"secretId":"AKIDa","secretKey":"k","token":"t","balance":5,"instanceQuota":3,"spotQuota":1}],
                "timing":{"pendingSeconds":0,"publicIpDelaySeconds":0.5,"terminatingSeconds":1},
                "rateLimits":{"RunInstances":0},
                "capacity":[{"zone":"ap-guangzhou-3","instanceType":"S5.MEDIUM2","available":0},
                    {"zone":"ap-guangzhou-4","instanceType":"S5.MEDIUM2","chargeType":"SPOTPAID","available":1}],
                "faults":[{"action":"RunInstances","code":"InternalError","rate":1.0,"count":2}],
                "regions":[{"region":"xx-test","regionName":"Test","zones":[{"zone":"xx-test-1","zoneId":"990001"}]}]}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.accounts[0].instance_quota, 3);
        assert_eq!(config.timing.public_ip_delay_seconds, 0.5);
        assert_eq!(config.capacity[0].available, Some(0));
        assert_eq!(config.capacity[0].charge_type, None, "both pools");
        assert_eq!(config.capacity[1].charge_type, Some(StockPool::Spot));
        assert_eq!(config.faults[0].count, Some(2));
        let regions = config.regions.unwrap();
        assert_eq!(regions[0].zones[0].zone_id.as_deref(), Some("990001"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = format!("{:?}", SimConfig::default());
        assert!(!text.contains(DEFAULT_SECRET_KEY));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn duplicate_accounts_and_negative_timing_are_rejected() {
        let mut config = SimConfig::default();
        config.accounts.push(AccountConfig::default());
        assert!(config.validate().is_err());
        let mut config = SimConfig::default();
        config.timing.pending_seconds = -1.0;
        assert!(config.validate().is_err());
        let config = SimConfig {
            regions: Some(Vec::new()),
            ..SimConfig::default()
        };
        assert!(
            config.validate().is_err(),
            "an empty catalogue serves nothing"
        );
    }
}
