//! Private addresses from a per-subnet CIDR derived from the subnet id, and public
//! addresses from a pool that is never routed anywhere.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// `10.<n>.0.0/16`, with `n` taken from a hash of the subnet id, so the same subnet id
/// always maps to the same block across runs.
pub fn subnet_cidr(subnet_id: &str) -> (Ipv4Addr, u8) {
    let digest = Sha256::digest(subnet_id.as_bytes());
    (Ipv4Addr::new(10, digest[0], 0, 0), 16)
}

/// A deterministic `vpc-xxxxxxxx` / `subnet-xxxxxxxx` style id from a seed.
pub fn derived_id(prefix: &str, seed: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(seed.as_bytes());
    let suffix: String = digest[..8]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}-{suffix}")
}

#[derive(Debug, Default)]
struct SubnetPool {
    used: HashSet<Ipv4Addr>,
    cursor: u32,
}

/// Private IPs in use per subnet.
#[derive(Debug, Default)]
pub struct PrivateIpPools {
    subnets: HashMap<String, SubnetPool>,
}

/// Host addresses usable in a /16: .0.0 is the network, .0.1 the gateway, .255.255 broadcast.
const FIRST_HOST: u32 = 2;
const HOSTS: u32 = 65_534 - 1;

impl PrivateIpPools {
    /// Checks that explicit addresses are well formed, in the subnet and free.
    pub fn check_requested(
        &self,
        subnet_id: &str,
        ips: &[String],
    ) -> Result<Vec<Ipv4Addr>, ApiError> {
        let (base, _) = subnet_cidr(subnet_id);
        let pool = self.subnets.get(subnet_id);
        let mut parsed = Vec::with_capacity(ips.len());
        for ip in ips {
            let addr: Ipv4Addr = ip.parse().map_err(|_| {
                ApiError::new(
                    "InvalidParameterValue.IPAddressMalformed",
                    format!("The IP address `{ip}` is malformed."),
                )
            })?;
            let [a, b, _, _] = addr.octets();
            let [ba, bb, _, _] = base.octets();
            if a != ba || b != bb || !host_in_range(addr) {
                return Err(ApiError::new(
                    "VpcAddrNotInSubNet",
                    format!(
                        "The VPC IP address `{ip}` is not in the subnet {base}/16 of `{subnet_id}`."
                    ),
                ));
            }
            if pool.is_some_and(|p| p.used.contains(&addr)) || parsed.contains(&addr) {
                return Err(ApiError::new(
                    "VpcIpIsUsed",
                    format!("The VPC IP address `{ip}` is already occupied."),
                ));
            }
            parsed.push(addr);
        }
        Ok(parsed)
    }

    pub fn reserve(&mut self, subnet_id: &str, addr: Ipv4Addr) {
        self.subnets
            .entry(subnet_id.to_string())
            .or_default()
            .used
            .insert(addr);
    }

    /// The next free address of the subnet, scanning from where the last one was taken.
    pub fn allocate(&mut self, subnet_id: &str) -> Result<Ipv4Addr, ApiError> {
        let (base, _) = subnet_cidr(subnet_id);
        let pool = self.subnets.entry(subnet_id.to_string()).or_default();
        for _ in 0..HOSTS {
            let offset = FIRST_HOST + pool.cursor % HOSTS;
            pool.cursor = pool.cursor.wrapping_add(1);
            let addr = Ipv4Addr::from(u32::from(base) + offset);
            if pool.used.insert(addr) {
                return Ok(addr);
            }
        }
        Err(ApiError::new(
            "FailedOperation.NoAvailableIpAddressCountInSubnet",
            format!("The subnet `{subnet_id}` has no free IP address left."),
        ))
    }

    pub fn release(&mut self, subnet_id: &str, addr: Ipv4Addr) {
        if let Some(pool) = self.subnets.get_mut(subnet_id) {
            pool.used.remove(&addr);
        }
    }

    /// Free addresses left in a subnet.
    pub fn free(&self, subnet_id: &str) -> u32 {
        HOSTS
            - self
                .subnets
                .get(subnet_id)
                .map_or(0, |p| p.used.len() as u32)
    }
}

fn host_in_range(addr: Ipv4Addr) -> bool {
    let low = u32::from(addr) & 0xffff;
    (FIRST_HOST..FIRST_HOST + HOSTS).contains(&low)
}

/// Public addresses from 198.18.0.0/15 (RFC 2544 benchmarking range): realistic enough to
/// parse, guaranteed to reach nothing.
#[derive(Debug)]
pub struct PublicIpPool {
    next: u32,
    released: Vec<Ipv4Addr>,
}

impl Default for PublicIpPool {
    fn default() -> Self {
        Self {
            next: 1,
            released: Vec::new(),
        }
    }
}

impl PublicIpPool {
    pub fn allocate(&mut self) -> Ipv4Addr {
        if let Some(addr) = self.released.pop() {
            return addr;
        }
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        let addr = Ipv4Addr::from(base + (self.next % (1 << 17)));
        self.next += 1;
        addr
    }

    pub fn release(&mut self, addr: Ipv4Addr) {
        self.released.push(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_is_deterministic_per_subnet() {
        assert_eq!(
            subnet_cidr("subnet-abcdefgh"),
            subnet_cidr("subnet-abcdefgh")
        );
        let (base, bits) = subnet_cidr("subnet-abcdefgh");
        assert_eq!(bits, 16);
        assert_eq!(base.octets()[0], 10);
        assert_eq!(derived_id("vpc", "x"), derived_id("vpc", "x"));
        assert_eq!(derived_id("vpc", "x").len(), 12);
    }

    #[test]
    fn allocation_skips_reserved_and_reuses_released() {
        let mut pools = PrivateIpPools::default();
        let (base, _) = subnet_cidr("subnet-1");
        let first = Ipv4Addr::from(u32::from(base) + 2);
        pools.reserve("subnet-1", first);
        let a = pools.allocate("subnet-1").unwrap();
        assert_ne!(a, first);
        assert_eq!(u32::from(a), u32::from(base) + 3);
        let err = pools
            .check_requested("subnet-1", &[a.to_string()])
            .unwrap_err();
        assert_eq!(err.code, "VpcIpIsUsed");
        pools.release("subnet-1", a);
        assert!(pools.check_requested("subnet-1", &[a.to_string()]).is_ok());
    }

    #[test]
    fn requested_addresses_are_checked() {
        let pools = PrivateIpPools::default();
        let code = |ip: &str| {
            pools
                .check_requested("subnet-1", &[ip.into()])
                .unwrap_err()
                .code
        };
        assert_eq!(code("10.0.0"), "InvalidParameterValue.IPAddressMalformed");
        assert_eq!(code("192.168.0.5"), "VpcAddrNotInSubNet");
        let (base, _) = subnet_cidr("subnet-1");
        let ok = Ipv4Addr::from(u32::from(base) + 77).to_string();
        assert!(
            pools
                .check_requested("subnet-1", std::slice::from_ref(&ok))
                .is_ok()
        );
        assert_eq!(
            pools
                .check_requested("subnet-1", &[ok.clone(), ok])
                .unwrap_err()
                .code,
            "VpcIpIsUsed"
        );
    }
}
