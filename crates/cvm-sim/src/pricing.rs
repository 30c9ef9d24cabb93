//! Instance types: the cores and memory a type name encodes, and a simple hourly price.
//!
//! Tencent type names read `<FAMILY><generation>.<size><memory GiB>`, e.g. `S5.MEDIUM2`
//! is 2 cores and 2 GiB. The simulator's price per hour (CNY) is
//! `cores × core price + GiB × memory price` of the family below; spot costs 20% of that.

use super::error::ApiError;

/// (family prefix, CNY per core-hour, CNY per GiB-hour); the first matching prefix wins.
const FAMILY_PRICES: &[(&str, f64, f64)] = &[
    ("SA", 0.05, 0.025),
    ("S", 0.06, 0.03),
    ("MA", 0.05, 0.04),
    ("M", 0.06, 0.05),
    ("C", 0.08, 0.03),
    ("IT", 0.10, 0.05),
    ("GN", 1.50, 0.05),
    ("GT", 1.50, 0.05),
];
const OTHER_FAMILY_PRICE: (f64, f64) = (0.07, 0.035);
pub const SPOT_DISCOUNT: f64 = 0.2;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceTypeSpec {
    pub family: String,
    pub cpu: u32,
    pub memory_gib: u32,
}

impl InstanceTypeSpec {
    pub fn parse(instance_type: &str) -> Result<Self, ApiError> {
        let malformed = || {
            ApiError::new(
                "InvalidInstanceType.Malformed",
                format!("The specified InstanceType `{instance_type}` has an invalid format."),
            )
        };
        let not_found = || {
            ApiError::new(
                "InvalidParameterValue.InstanceTypeNotFound",
                format!("The specified instance type `{instance_type}` does not exist."),
            )
        };
        let (family, size) = instance_type.split_once('.').ok_or_else(malformed)?;
        if family.is_empty()
            || !family.starts_with(|c: char| c.is_ascii_uppercase())
            || !family.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(malformed());
        }
        let (name, memory) = split_trailing_number(size).ok_or_else(not_found)?;
        let cpu = match name {
            "SMALL" => 1,
            "MEDIUM" => 2,
            "LARGE" => 4,
            "XLARGE" => 8,
            other => {
                let n: u32 = other
                    .strip_suffix("XLARGE")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(not_found)?;
                n.checked_mul(4)
                    .filter(|c| *c <= 512)
                    .ok_or_else(not_found)?
            }
        };
        if memory == 0 || memory > 4096 {
            return Err(not_found());
        }
        let family = family
            .trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_lowercase())
            .to_string();
        Ok(Self {
            family,
            cpu,
            memory_gib: memory,
        })
    }

    pub fn hourly_price(&self) -> f64 {
        let (core, gib) = FAMILY_PRICES
            .iter()
            .find(|(prefix, _, _)| self.family.starts_with(prefix))
            .map(|(_, c, g)| (*c, *g))
            .unwrap_or(OTHER_FAMILY_PRICE);
        f64::from(self.cpu) * core + f64::from(self.memory_gib) * gib
    }

    pub fn spot_hourly_price(&self) -> f64 {
        self.hourly_price() * SPOT_DISCOUNT
    }
}

/// `MEDIUM2` → ("MEDIUM", 2).
fn split_trailing_number(size: &str) -> Option<(&str, u32)> {
    let idx = size.rfind(|c: char| !c.is_ascii_digit())? + 1;
    let (name, digits) = size.split_at(idx);
    Some((name, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_give_cores_and_memory() {
        let t = InstanceTypeSpec::parse("S5.MEDIUM2").unwrap();
        assert_eq!((t.family.as_str(), t.cpu, t.memory_gib), ("S", 2, 2));
        let t = InstanceTypeSpec::parse("S5.16XLARGE256").unwrap();
        assert_eq!((t.cpu, t.memory_gib), (64, 256));
        let t = InstanceTypeSpec::parse("SA2.LARGE8").unwrap();
        assert_eq!((t.family.as_str(), t.cpu, t.memory_gib), ("SA", 4, 8));
        assert_eq!(InstanceTypeSpec::parse("S1.SMALL1").unwrap().cpu, 1);
    }

    #[test]
    fn bad_type_names_get_the_real_codes() {
        assert_eq!(
            InstanceTypeSpec::parse("S5MEDIUM2").unwrap_err().code,
            "InvalidInstanceType.Malformed"
        );
        assert_eq!(
            InstanceTypeSpec::parse("S5.HUGE2").unwrap_err().code,
            "InvalidParameterValue.InstanceTypeNotFound"
        );
        assert_eq!(
            InstanceTypeSpec::parse("S5.MEDIUM").unwrap_err().code,
            "InvalidParameterValue.InstanceTypeNotFound"
        );
    }

    #[test]
    fn prices_follow_the_family_table() {
        let s = InstanceTypeSpec::parse("S5.MEDIUM2").unwrap();
        assert!((s.hourly_price() - 0.18).abs() < 1e-9);
        assert!((s.spot_hourly_price() - 0.036).abs() < 1e-9);
        let gpu = InstanceTypeSpec::parse("GN7.2XLARGE32").unwrap();
        assert!(gpu.hourly_price() > 10.0);
    }
}
