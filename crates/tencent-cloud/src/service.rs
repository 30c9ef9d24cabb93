//! The Tencent Cloud APIs the operator speaks. They share signing (TC3-HMAC-SHA256 with the
//! service's name in the credential scope), the JSON envelope, error codes, rate limiting and
//! retries ([`super::client`]); each has its own version and endpoint host.

/// One Tencent Cloud API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Service {
    /// The signing name and the first label of the host, e.g. `cvm`.
    pub name: &'static str,
    /// `X-TC-Version`.
    pub version: &'static str,
    /// Whether the default host names the region (`cvm.ap-guangzhou.tencentcloudapi.com`)
    /// or is one for all regions (`tag.tencentcloudapi.com`).
    pub regional: bool,
}

/// Cloud Virtual Machine.
pub const CVM: Service = Service {
    name: "cvm",
    version: "2017-03-12",
    regional: true,
};

/// The Tag service: changing an instance's tags after launch goes through it, not CVM.
pub const TAG: Service = Service {
    name: "tag",
    version: "2018-08-13",
    regional: false,
};

impl Service {
    /// The host name requests go to when no endpoint is configured.
    pub fn default_host(&self, region: &str) -> String {
        if self.regional {
            format!("{}.{region}.tencentcloudapi.com", self.name)
        } else {
            format!("{}.tencentcloudapi.com", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_each_service() {
        assert_eq!(
            CVM.default_host("ap-guangzhou"),
            "cvm.ap-guangzhou.tencentcloudapi.com"
        );
        assert_eq!(TAG.default_host("ap-guangzhou"), "tag.tencentcloudapi.com");
    }
}
