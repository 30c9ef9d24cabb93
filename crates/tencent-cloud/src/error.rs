//! Errors of CVM API calls and what the operator should do about them (reference §5).

use std::sync::Arc;

/// An error from a CVM API call. Clone, so one failed batch can be handed to every waiter.
///
/// No variant carries a request body, header or credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// The API answered with `Response.Error`.
    #[error("{action} failed: {code}: {message} (RequestId {request_id})")]
    Api {
        action: String,
        code: String,
        message: String,
        request_id: String,
    },
    /// The request did not complete: connection, TLS or timeout.
    #[error("{action}: network error: {source}")]
    Transport {
        action: String,
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// A non-200 HTTP status; Tencent reports API errors with 200, so this comes from the path in between.
    #[error("{action}: HTTP status {status}")]
    HttpStatus { action: String, status: u16 },
    /// A 200 response whose body is not the expected envelope.
    #[error("{action}: cannot decode the response: {message}")]
    Decode { action: String, message: String },
    /// The client cannot be used as configured (endpoint, region).
    #[error("CVM client configuration: {0}")]
    Config(String),
    /// A failure inside the client itself (a batch task that died).
    #[error("CVM client: {0}")]
    Internal(String),
}

/// What kind of failure an error is, which decides who acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `RequestLimitExceeded*`: retry after backing off.
    RateLimited,
    /// Internal errors, busy resources, network trouble: retry with backoff.
    Transient,
    /// Signature, key, token or permission problems: a person must fix the credentials.
    Credentials,
    /// Insufficient balance, unpaid orders, account qualification: a person must pay or qualify.
    Balance,
    /// Sold out or not offered in the zone (spot stock, bid too low): later, or another zone or type.
    Capacity,
    /// An account quota is used up: a person must free or raise it.
    Quota,
    /// The request itself is wrong (parameters, IDs that do not exist): fix the spec.
    InvalidSpec,
    /// The instance does not exist (any more).
    NotFound,
    /// The instance's current state forbids the operation: retry once it settles.
    InstanceState,
    /// Anything else, mostly programming errors (unknown action, version, protocol).
    Terminal,
}

impl ErrorClass {
    /// Whether retrying the same request soon (with backoff) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::RateLimited | ErrorClass::Transient)
    }

    /// Whether nothing changes until a person acts (so the resource is Stalled).
    pub fn needs_person(self) -> bool {
        matches!(
            self,
            ErrorClass::Credentials
                | ErrorClass::Balance
                | ErrorClass::Capacity
                | ErrorClass::Quota
                | ErrorClass::InvalidSpec
                | ErrorClass::Terminal
        )
    }
}

/// Codes for client-side failures, in the style of the SDKs' `ClientError.*`, so metrics and
/// conditions always have a code to show.
pub const CODE_NETWORK: &str = "ClientError.NetworkError";
pub const CODE_HTTP_STATUS: &str = "ClientError.HttpStatusCodeError";
pub const CODE_DECODE: &str = "ClientError.DecodeError";
pub const CODE_CONFIG: &str = "ClientError.ConfigError";
pub const CODE_INTERNAL: &str = "ClientError.InternalError";

impl CloudError {
    /// The Tencent error code, or a `ClientError.*` code for failures on our side of the wire.
    pub fn code(&self) -> &str {
        match self {
            CloudError::Api { code, .. } => code,
            CloudError::Transport { .. } => CODE_NETWORK,
            CloudError::HttpStatus { .. } => CODE_HTTP_STATUS,
            CloudError::Decode { .. } => CODE_DECODE,
            CloudError::Config(_) => CODE_CONFIG,
            CloudError::Internal(_) => CODE_INTERNAL,
        }
    }

    /// The message to show a person: Tencent's message, or the error's own text.
    pub fn message(&self) -> String {
        match self {
            CloudError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            CloudError::Api { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            CloudError::Api { code, .. } => classify_code(code),
            CloudError::Transport { source, .. } if source.is_builder() => ErrorClass::Terminal,
            CloudError::Transport { .. } => ErrorClass::Transient,
            CloudError::HttpStatus { status, .. } => match status {
                429 => ErrorClass::RateLimited,
                500..=599 | 408 => ErrorClass::Transient,
                _ => ErrorClass::Terminal,
            },
            // A proxy or load balancer page in place of the API's JSON; usually passes.
            CloudError::Decode { .. } => ErrorClass::Transient,
            CloudError::Config(_) => ErrorClass::InvalidSpec,
            CloudError::Internal(_) => ErrorClass::Transient,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    pub fn needs_person(&self) -> bool {
        self.class().needs_person()
    }

    /// The API does not serve the request's region at all (common code `UnsupportedRegion`):
    /// no instance can exist there, so there is nothing to look up or clean up.
    pub fn is_region_unsupported(&self) -> bool {
        self.code() == "UnsupportedRegion"
    }

    /// For TerminateInstances: the instance is already gone or on its way.
    pub fn is_already_terminated(&self) -> bool {
        matches!(
            self.code(),
            "InvalidInstanceId.NotFound"
                | "UnsupportedOperation.InstanceStateTerminated"
                | "UnsupportedOperation.InstanceStateTerminating"
                | "InvalidInstanceState.Terminating"
        )
    }
}

/// The part of a code before the first `.`, e.g. `InvalidParameterValue` for
/// `InvalidParameterValue.Range`.
fn family(code: &str) -> &str {
    code.split_once('.').map_or(code, |(head, _)| head)
}

/// Classifies a Tencent error code per reference §5.2.
///
/// Specific codes are matched before the family rules, because several families mix
/// meanings (`InvalidParameterValue.InsufficientOffering` is stock, not a typo).
pub fn classify_code(code: &str) -> ErrorClass {
    use ErrorClass::*;
    // Exceptions to the family rules below.
    match code {
        // Spot stock and price.
        "InvalidParameterValue.InsufficientOffering"
        | "InvalidParameterValue.InsufficientPrice"
        | "ResourceUnavailable.InstanceType"
        | "ResourceNotFound.InvalidZoneInstanceType"
        | "ResourceNotFound.NoDefaultCbs"
        | "ResourceNotFound.NoDefaultCbsWithReason"
        | "FailedOperation.NoAvailableIpAddressCountInSubnet"
        | "LimitExceeded.VpcSubnetNum" => return Capacity,
        // Images still being prepared, price inquiry or security group hiccups.
        "InvalidParameterValue.InvalidImageState"
        | "FailedOperation.InvalidImageState"
        | "FailedOperation.InquiryPriceFailed"
        | "FailedOperation.SecurityGroupActionFailed"
        | "MutexOperation.TaskRunning"
        | "OperationDenied.InstanceOperationInProgress"
        // The Tag service is still applying an earlier change to the resource.
        | "FailedOperation.ResourceTagProcessing"
        | "ResourceUnavailable"
        | "ServiceUnavailable"
        | "InternalServerError" => return Transient,
        "InvalidParameterValue.TagQuotaLimitExceeded"
        | "InvalidParameterValue.ExternalIpQuotaLimited"
        | "InstancesQuotaLimitExceeded"
        | "UnsupportedOperation.UserLimitOperationExceedQuota" => return Quota,
        "InvalidAccount.InsufficientBalance"
        | "InvalidAccount.UnpaidOrder"
        | "UnsupportedOperation.NotSupportUnpaidOrder"
        | "UnsupportedOperation.OnlyForPrepaidAccount"
        | "UnsupportedOperation.UnsupportedInternationalUser"
        | "AccountQualificationRestrictions"
        | "OperationDenied.AccountNotSupported"
        | "InvalidPermission" => return Balance,
        "IpInBlacklist" | "IpNotInWhitelist" => return Credentials,
        "InvalidInstanceId.NotFound" => return NotFound,
        "InvalidInstanceState" => return InstanceState,
        // Day-2 refusals that no wait fixes: the instance was stopped without charging (start
        // it first), it is running and the call needed ForceStop or a stop window, or the
        // change crosses instance families. The transitional states stay InstanceState.
        "UnsupportedOperation.StoppedModeStopCharging"
        | "UnsupportedOperation.StoppedModeStopChargingSameFamily"
        | "UnsupportedOperation.InstanceStateRunning"
        | "UnsupportedOperation.HeterogeneousChangeInstanceFamily"
        | "UnsupportedOperation.UnsupportedChangeInstanceFamily"
        | "UnsupportedOperation.LocalDataDiskChangeInstanceFamily"
        | "UnsupportedOperation.InstanceOsWindows"
        | "InvalidParameter.ReservedTagKey"
        | "InvalidParameterValue.ResourceDescriptionError" => return InvalidSpec,
        // Termination protection stays until a person lifts it.
        "UnsupportedOperation.InstancesProtected" => return InvalidSpec,
        "FailedOperation.IllegalTagKey"
        | "FailedOperation.IllegalTagValue"
        | "FailedOperation.TagKeyReserved"
        | "FailedOperation.DisasterRecoverGroupNotFound"
        | "FailedOperation.SnapshotSizeLargerThanDataSize"
        | "FailedOperation.SnapshotSizeLessThanDataSize"
        | "FailedOperation.PromotionalRegionRestriction"
        | "FailedOperation.InvalidInstanceApplicationRole"
        | "FailedOperation.InvalidInstanceApplicationRoleEmr"
        | "InvalidInstanceNotSupportedPrepaidInstance"
        | "VpcIpIsUsed"
        | "VpcAddrNotInSubNet"
        | "UnsupportedRegion"
        | "UnknownParameter"
        | "InvalidParameterConflict"
        | "InvalidParameterCombination"
        | "InvalidPassword"
        | "InvalidPeriod"
        | "InvalidFilter" => return InvalidSpec,
        _ => {}
    }
    if code.starts_with("UnsupportedOperation.InstanceState")
        || code.starts_with("InvalidInstanceState.")
    {
        return InstanceState;
    }
    match family(code) {
        "RequestLimitExceeded" => RateLimited,
        "InternalError" | "ResourceInUse" | "ResourceBusy" => Transient,
        "AuthFailure" | "UnauthorizedOperation" => Credentials,
        "InvalidAccount" => Balance,
        "ResourceInsufficient" | "ResourcesSoldOut" => Capacity,
        "LimitExceeded" => Quota,
        "MissingParameter"
        | "InvalidParameter"
        | "InvalidParameterValue"
        | "UnsupportedOperation"
        | "ResourceNotFound"
        | "InvalidClientToken"
        | "InvalidFilterValue"
        | "InvalidZone"
        | "InvalidRegion" => InvalidSpec,
        // Malformed or unknown IDs of the spec's inputs: images, key pairs, groups, projects, ...
        f if f.starts_with("Invalid")
            && (code.ends_with(".NotFound")
                || code.ends_with(".Malformed")
                || code.ends_with(".TooLong")
                || code.ends_with(".NotSupported")) =>
        {
            InvalidSpec
        }
        _ => Terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn day2_codes_wait_or_need_a_person() {
        for code in [
            "OperationDenied.InstanceOperationInProgress",
            "MutexOperation.TaskRunning",
            "FailedOperation.ResourceTagProcessing",
        ] {
            assert!(classify_code(code).is_retryable(), "{code}");
        }
        for code in [
            "UnsupportedOperation.InstanceStateStarting",
            "UnsupportedOperation.InstanceStateStopping",
            "UnsupportedOperation.InstanceStateRebooting",
        ] {
            assert_eq!(classify_code(code), InstanceState, "{code}");
        }
        for code in [
            "UnsupportedOperation.StoppedModeStopCharging",
            "UnsupportedOperation.InstanceStateRunning",
            "UnsupportedOperation.UnsupportedChangeInstanceFamily",
            "UnsupportedOperation.HeterogeneousChangeInstanceFamily",
            "InvalidParameter.ReservedTagKey",
        ] {
            assert!(classify_code(code).needs_person(), "{code}");
        }
    }

    /// Every code named in reference §5.2, with the class the table gives it.
    const REFERENCE_TABLE: &[(&str, ErrorClass)] = &[
        // Auth / credentials
        ("AuthFailure.SignatureFailure", Credentials),
        ("AuthFailure.SignatureExpire", Credentials),
        ("AuthFailure.SecretIdNotFound", Credentials),
        ("AuthFailure.InvalidSecretId", Credentials),
        ("AuthFailure.TokenFailure", Credentials),
        ("AuthFailure.InvalidAuthorization", Credentials),
        ("AuthFailure.MFAFailure", Credentials),
        ("AuthFailure.UnauthorizedOperation", Credentials),
        ("AuthFailure.CamRoleNameAuthenticateFailed", Credentials),
        ("UnauthorizedOperation", Credentials),
        ("UnauthorizedOperation.PermissionDenied", Credentials),
        ("UnauthorizedOperation.InvalidToken", Credentials),
        ("UnauthorizedOperation.MFAExpired", Credentials),
        ("UnauthorizedOperation.MFANotFound", Credentials),
        ("IpInBlacklist", Credentials),
        ("IpNotInWhitelist", Credentials),
        // Rate limiting
        ("RequestLimitExceeded", RateLimited),
        ("RequestLimitExceeded.UinLimitExceeded", RateLimited),
        (
            "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
            RateLimited,
        ),
        ("RequestLimitExceeded.IPLimitExceeded", RateLimited),
        // Transient / busy
        ("InternalError", Transient),
        ("InternalError.TradeUnknownError", Transient),
        ("InternalServerError", Transient),
        ("ServiceUnavailable", Transient),
        ("ResourceUnavailable", Transient),
        ("ResourceInUse", Transient),
        ("MutexOperation.TaskRunning", Transient),
        ("OperationDenied.InstanceOperationInProgress", Transient),
        ("FailedOperation.InvalidImageState", Transient),
        ("InvalidParameterValue.InvalidImageState", Transient),
        ("FailedOperation.InquiryPriceFailed", Transient),
        ("FailedOperation.SecurityGroupActionFailed", Transient),
        // Balance / payment
        ("InvalidAccount.InsufficientBalance", Balance),
        ("InvalidAccount.UnpaidOrder", Balance),
        ("UnsupportedOperation.NotSupportUnpaidOrder", Balance),
        ("UnsupportedOperation.OnlyForPrepaidAccount", Balance),
        ("AccountQualificationRestrictions", Balance),
        ("OperationDenied.AccountNotSupported", Balance),
        ("InvalidPermission", Balance),
        ("UnsupportedOperation.UnsupportedInternationalUser", Balance),
        // Capacity / stock
        ("ResourceInsufficient.AvailabilityZoneSoldOut", Capacity),
        ("ResourceInsufficient.SpecifiedInstanceType", Capacity),
        (
            "ResourceInsufficient.ZoneSoldOutForSpecifiedInstance",
            Capacity,
        ),
        ("ResourceInsufficient.CloudDiskSoldOut", Capacity),
        ("ResourceInsufficient.CloudDiskUnavailable", Capacity),
        ("ResourceInsufficient.InsufficientOfferingMinimum", Capacity),
        ("ResourceInsufficient.CidrBlock", Capacity),
        (
            "ResourceInsufficient.DisasterRecoverGroupCvmQuota",
            Capacity,
        ),
        ("ResourcesSoldOut.AvailableZone", Capacity),
        ("ResourcesSoldOut.SpecifiedInstanceType", Capacity),
        ("ResourcesSoldOut.EipInsufficient", Capacity),
        ("ResourceUnavailable.InstanceType", Capacity),
        ("ResourceNotFound.InvalidZoneInstanceType", Capacity),
        ("InvalidParameterValue.InsufficientOffering", Capacity),
        ("InvalidParameterValue.InsufficientPrice", Capacity),
        (
            "FailedOperation.NoAvailableIpAddressCountInSubnet",
            Capacity,
        ),
        ("LimitExceeded.VpcSubnetNum", Capacity),
        ("ResourceNotFound.NoDefaultCbs", Capacity),
        ("ResourceNotFound.NoDefaultCbsWithReason", Capacity),
        // Quota
        ("LimitExceeded.InstanceQuota", Quota),
        ("LimitExceeded.CvmInstanceQuota", Quota),
        ("InstancesQuotaLimitExceeded", Quota),
        ("LimitExceeded.PrepayQuota", Quota),
        ("LimitExceeded.PrepayUnderwriteQuota", Quota),
        ("LimitExceeded.SpotQuota", Quota),
        ("LimitExceeded.UserSpotQuota", Quota),
        ("LimitExceeded.SingleUSGQuota", Quota),
        ("LimitExceeded.AssociateUSGLimitExceeded", Quota),
        ("LimitExceeded.CvmsVifsPerSecGroupLimitExceeded", Quota),
        ("LimitExceeded.DisasterRecoverGroup", Quota),
        ("LimitExceeded.InstanceEniNumLimit", Quota),
        ("LimitExceeded.IPv6AddressNum", Quota),
        ("LimitExceeded.UserReturnQuota", Quota),
        ("LimitExceeded.TagResourceQuota", Quota),
        ("InvalidParameterValue.TagQuotaLimitExceeded", Quota),
        ("LimitExceeded", Quota),
        // Invalid parameters
        ("MissingParameter", InvalidSpec),
        ("MissingParameter.AtLeastOne", InvalidSpec),
        ("MissingParameter.MonitorService", InvalidSpec),
        ("MissingParameter.DPDKInstanceTypeRequiredVPC", InvalidSpec),
        ("InvalidParameter", InvalidSpec),
        ("InvalidParameter.ParameterConflict", InvalidSpec),
        ("InvalidParameter.InvalidIpFormat", InvalidSpec),
        ("InvalidParameter.HostNameIllegal", InvalidSpec),
        (
            "InvalidParameter.InternetAccessibleNotSupported",
            InvalidSpec,
        ),
        ("InvalidParameter.InstanceImageNotSupport", InvalidSpec),
        ("InvalidParameterValue", InvalidSpec),
        ("InvalidParameterValue.Range", InvalidSpec),
        ("InvalidParameterValue.TooLarge", InvalidSpec),
        ("InvalidParameterValue.LimitExceeded", InvalidSpec),
        ("InvalidParameterValue.IncorrectFormat", InvalidSpec),
        ("InvalidParameterValue.ZoneNotSupported", InvalidSpec),
        ("InvalidParameterValue.InstanceTypeNotFound", InvalidSpec),
        (
            "InvalidParameterValue.InvalidImageForGivenInstanceType",
            InvalidSpec,
        ),
        ("InvalidParameterValue.InvalidImageId", InvalidSpec),
        ("InvalidParameterValue.InvalidPassword", InvalidSpec),
        ("InvalidParameterValue.InvalidUserDataFormat", InvalidSpec),
        ("InvalidParameterValue.IllegalHostName", InvalidSpec),
        ("InvalidParameterValue.SubnetNotExist", InvalidSpec),
        ("InvalidParameterValue.VpcIdNotExist", InvalidSpec),
        ("InvalidParameterValue.VpcIdSubnetIdNotMatch", InvalidSpec),
        ("InvalidParameterValue.SubnetIdZoneIdNotMatch", InvalidSpec),
        ("InvalidParameterValue.VpcIdZoneIdNotMatch", InvalidSpec),
        ("InvalidParameterValue.KeyPairNotFound", InvalidSpec),
        ("InvalidParameterValue.DuplicateTags", InvalidSpec),
        ("InvalidParameterValue.CamRoleNameMalformed", InvalidSpec),
        ("InvalidParameterValue.LaunchTemplateNotFound", InvalidSpec),
        ("InvalidParameterCombination", InvalidSpec),
        ("InvalidParameterConflict", InvalidSpec),
        ("UnknownParameter", InvalidSpec),
        ("InvalidImageId.NotFound", InvalidSpec),
        ("InvalidImageId.Malformed", InvalidSpec),
        ("InvalidInstanceType.Malformed", InvalidSpec),
        ("InvalidZone.MismatchRegion", InvalidSpec),
        ("InvalidRegion.NotFound", InvalidSpec),
        ("UnsupportedRegion", InvalidSpec),
        ("InvalidProjectId.NotFound", InvalidSpec),
        ("InvalidSecurityGroupId.NotFound", InvalidSpec),
        ("InvalidSgId.Malformed", InvalidSpec),
        ("InvalidKeyPairId.Malformed", InvalidSpec),
        ("InvalidPassword", InvalidSpec),
        ("InvalidPeriod", InvalidSpec),
        ("InvalidInstanceName.TooLong", InvalidSpec),
        ("InvalidHostId.Malformed", InvalidSpec),
        ("InvalidHostId.NotFound", InvalidSpec),
        ("VpcIpIsUsed", InvalidSpec),
        ("VpcAddrNotInSubNet", InvalidSpec),
        ("InvalidFilter", InvalidSpec),
        ("InvalidFilterValue.LimitExceeded", InvalidSpec),
        ("FailedOperation.IllegalTagKey", InvalidSpec),
        ("FailedOperation.IllegalTagValue", InvalidSpec),
        ("FailedOperation.TagKeyReserved", InvalidSpec),
        (
            "UnsupportedOperation.KeyPairUnsupportedWindows",
            InvalidSpec,
        ),
        (
            "UnsupportedOperation.NoInstanceTypeSupportSpot",
            InvalidSpec,
        ),
        (
            "UnsupportedOperation.MinCountUnsupportedRegion",
            InvalidSpec,
        ),
        ("InvalidClientToken.TooLong", InvalidSpec),
        // Instance state
        ("InvalidInstanceId.NotFound", NotFound),
        ("InvalidInstanceId.Malformed", InvalidSpec),
        ("InvalidInstanceState", InstanceState),
        ("UnsupportedOperation.InstanceStatePending", InstanceState),
        ("UnsupportedOperation.InstanceStateStarting", InstanceState),
        ("UnsupportedOperation.InstanceStateStopping", InstanceState),
        ("UnsupportedOperation.InstanceStateRebooting", InstanceState),
        ("UnsupportedOperation.InstanceStateShutdown", InstanceState),
        ("UnsupportedOperation.InstanceStateIsolating", InstanceState),
        (
            "UnsupportedOperation.InstanceStateTerminating",
            InstanceState,
        ),
        (
            "UnsupportedOperation.InstanceStateTerminated",
            InstanceState,
        ),
        (
            "UnsupportedOperation.InstanceStateLaunchFailed",
            InstanceState,
        ),
        (
            "UnsupportedOperation.InstanceStateServiceLiveMigrate",
            InstanceState,
        ),
        ("UnsupportedOperation.InstancesProtected", InvalidSpec),
        // Other common codes
        ("ActionOffline", Terminal),
        ("InvalidAction", Terminal),
        ("NoSuchVersion", Terminal),
        ("NoSuchProduct", Terminal),
        ("RequestSizeLimitExceeded", Terminal),
        ("ResponseSizeLimitExceeded", Terminal),
        ("UnsupportedProtocol", Terminal),
        ("InvalidRequest", Terminal),
        ("DryRunOperation", Terminal),
        ("FailedOperation", Terminal),
        ("SomethingNobodyHasSeen.Yet", Terminal),
    ];

    /// Every code the Go SDK lists for RunInstances, DescribeInstances, DescribeInstancesStatus
    /// and TerminateInstances (reference `cvm-error-codes-by-action.txt`). None of them may fall
    /// through to `Terminal`: each needs a decision, except the few listed below.
    const OPERATOR_ACTION_CODES: &str = "AccountQualificationRestrictions AuthFailure.CamRoleNameAuthenticateFailed FailedOperation.DisasterRecoverGroupNotFound FailedOperation.IllegalTagKey FailedOperation.IllegalTagValue FailedOperation.InquiryPriceFailed FailedOperation.InvalidInstanceApplicationRole FailedOperation.InvalidInstanceApplicationRoleEmr FailedOperation.NoAvailableIpAddressCountInSubnet FailedOperation.PromotionalRegionRestriction FailedOperation.SecurityGroupActionFailed FailedOperation.SnapshotSizeLargerThanDataSize FailedOperation.SnapshotSizeLessThanDataSize FailedOperation.TagKeyReserved FailedOperation.Unreturnable InstancesQuotaLimitExceeded InternalError.TradeUnknownError InternalServerError InvalidAccount.InsufficientBalance InvalidAccount.UnpaidOrder InvalidClientToken.TooLong InvalidFilter InvalidFilterValue.LimitExceeded InvalidHostId.Malformed InvalidHostId.NotFound InvalidImageId.Malformed InvalidImageId.NotFound InvalidInstance.NotSupported InvalidInstanceId.Malformed InvalidInstanceId.NotFound InvalidInstanceName.TooLong InvalidInstanceNotSupportedPrepaidInstance InvalidInstanceType.Malformed InvalidKeyPairId.Malformed InvalidParameter InvalidParameter.CdcNotSupported InvalidParameter.EdgeZoneMissInternetAccessible InvalidParameter.HostIdCustomizedInstanceTypeNotSupport InvalidParameter.HostIdInstanceTypeNotSupport InvalidParameter.HostIdStandardInstanceTypeNotSupport InvalidParameter.HostIdStatusNotSupport InvalidParameter.InstanceImageNotSupport InvalidParameter.InstanceTypeSupportedHostNotFound InvalidParameter.InternetAccessibleNotSupported InvalidParameter.InvalidIpFormat InvalidParameter.LackCoreCountOrThreadPerCore InvalidParameter.OnlySupportForEdgeZone InvalidParameter.ParameterConflict InvalidParameter.SnapshotNotFound InvalidParameter.SpecialParameterForSpecialAccount InvalidParameterCombination InvalidParameterValue InvalidParameterValue.BandwidthPackageIdMalformed InvalidParameterValue.BandwidthPackageIdNotFound InvalidParameterValue.BandwidthPackageIspNotMatch InvalidParameterValue.BandwidthPackageZoneNotMatch InvalidParameterValue.CamRoleNameMalformed InvalidParameterValue.ChcHostsNotFound InvalidParameterValue.CloudSsdDataDiskSizeTooSmall InvalidParameterValue.CoreCountValue InvalidParameterValue.DedicatedClusterNotSupportedChargeType InvalidParameterValue.DedicatedResourcePackIdsNotFound InvalidParameterValue.DedicatedResourcePackNotValid InvalidParameterValue.DedicatedResourcePackTenancyMismatch InvalidParameterValue.Duplicate InvalidParameterValue.DuplicateTags InvalidParameterValue.ElasticNetworkNotExist InvalidParameterValue.ElasticNetworkVpcSubnetMismatch InvalidParameterValue.ExternalIpQuotaLimited InvalidParameterValue.HpcClusterIdZoneIdNotMatch InvalidParameterValue.IPAddressMalformed InvalidParameterValue.IPv6AddressMalformed InvalidParameterValue.IllegalHostName InvalidParameterValue.IncorrectFormat InvalidParameterValue.InstanceIdMalformed InvalidParameterValue.InstanceTypeNotFound InvalidParameterValue.InstanceTypeNotSupportElasticNetworks InvalidParameterValue.InstanceTypeNotSupportHpcCluster InvalidParameterValue.InstanceTypeRequiredHpcCluster InvalidParameterValue.InsufficientOffering InvalidParameterValue.InsufficientPrice InvalidParameterValue.InvalidAppIdFormat InvalidParameterValue.InvalidImageForGivenInstanceType InvalidParameterValue.InvalidImageFormat InvalidParameterValue.InvalidImageId InvalidParameterValue.InvalidImageOsName InvalidParameterValue.InvalidImageState InvalidParameterValue.InvalidInstanceTypePeriodicContract InvalidParameterValue.InvalidIpFormat InvalidParameterValue.InvalidNetworkInterfaceId InvalidParameterValue.InvalidParameterMinCount InvalidParameterValue.InvalidPassword InvalidParameterValue.InvalidTimeFormat InvalidParameterValue.InvalidUserDataFormat InvalidParameterValue.InvalidVagueName InvalidParameterValue.InvalidVpcIdSubnetIdNotFound InvalidParameterValue.IspNotSupportForEdgeZone InvalidParameterValue.IspValueRepeated InvalidParameterValue.KeyPairNotFound InvalidParameterValue.LaunchTemplateIdMalformed InvalidParameterValue.LaunchTemplateIdNotExisted InvalidParameterValue.LaunchTemplateNotFound InvalidParameterValue.LaunchTemplateVersion InvalidParameterValue.LimitExceeded InvalidParameterValue.MustDhcpEnabledVpc InvalidParameterValue.MustEnabledIsRdma InvalidParameterValue.NotCdcSubnet InvalidParameterValue.NotSupported InvalidParameterValue.Range InvalidParameterValue.SnapshotIdMalformed InvalidParameterValue.SubnetIdMalformed InvalidParameterValue.SubnetIdZoneIdNotMatch InvalidParameterValue.SubnetNotExist InvalidParameterValue.TagKeyNotFound InvalidParameterValue.TagQuotaLimitExceeded InvalidParameterValue.ThreadPerCoreValue InvalidParameterValue.TooLarge InvalidParameterValue.UuidMalformed InvalidParameterValue.VpcIdMalformed InvalidParameterValue.VpcIdNotExist InvalidParameterValue.VpcIdSubnetIdNotMatch InvalidParameterValue.VpcIdZoneIdNotMatch InvalidParameterValue.VpcNotSupportIpv6Address InvalidParameterValue.ZoneNotSupported InvalidPassword InvalidPeriod InvalidPermission InvalidProjectId.NotFound InvalidSecurityGroupId.NotFound InvalidSgId.Malformed InvalidZone.MismatchRegion LimitExceeded.CvmInstanceQuota LimitExceeded.CvmsVifsPerSecGroupLimitExceeded LimitExceeded.DisasterRecoverGroup LimitExceeded.IPv6AddressNum LimitExceeded.InstanceEniNumLimit LimitExceeded.InstanceQuota LimitExceeded.PrepayQuota LimitExceeded.PrepayUnderwriteQuota LimitExceeded.SingleUSGQuota LimitExceeded.SpotQuota LimitExceeded.UserReturnQuota LimitExceeded.UserSpotQuota LimitExceeded.VpcSubnetNum MissingParameter MissingParameter.DPDKInstanceTypeRequiredVPC MissingParameter.MonitorService MutexOperation.TaskRunning OperationDenied.AccountNotSupported OperationDenied.ChcInstallCloudImageWithoutDeployNetwork OperationDenied.InstanceOperationInProgress OperationDenied.NotBandwidthShiftUpUserApplyEdgeZoneEip ResourceInsufficient.AvailabilityZoneSoldOut ResourceInsufficient.CidrBlock ResourceInsufficient.CloudDiskSoldOut ResourceInsufficient.CloudDiskUnavailable ResourceInsufficient.DisasterRecoverGroupCvmQuota ResourceInsufficient.InsufficientOfferingMinimum ResourceInsufficient.SpecifiedInstanceType ResourceNotFound.HpcCluster ResourceNotFound.KeyPairNotFound ResourceNotFound.NoDefaultCbs ResourceNotFound.NoDefaultCbsWithReason ResourceUnavailable.InstanceType ResourcesSoldOut.EipInsufficient ResourcesSoldOut.SpecifiedInstanceType UnauthorizedOperation.InvalidToken UnauthorizedOperation.MFAExpired UnauthorizedOperation.MFANotFound UnsupportedOperation UnsupportedOperation.BandwidthPackageIdNotSupported UnsupportedOperation.HibernationOsVersion UnsupportedOperation.InstanceChargeType UnsupportedOperation.InstanceMixedPricingModel UnsupportedOperation.InstanceStateBanning UnsupportedOperation.InstanceStateEnterRescueMode UnsupportedOperation.InstanceStateEnterServiceLiveMigrate UnsupportedOperation.InstanceStateExitRescueMode UnsupportedOperation.InstanceStateExitServiceLiveMigrate UnsupportedOperation.InstanceStateFreezing UnsupportedOperation.InstanceStateIsolating UnsupportedOperation.InstanceStateLaunchFailed UnsupportedOperation.InstanceStatePending UnsupportedOperation.InstanceStateRebooting UnsupportedOperation.InstanceStateStarting UnsupportedOperation.InstanceStateStopping UnsupportedOperation.InstanceStateTerminated UnsupportedOperation.InstanceStateTerminating UnsupportedOperation.InstanceTypeNotSupportConfidentiality UnsupportedOperation.InstanceTypeNotSupportGridLicence UnsupportedOperation.InstanceTypeNotSupportJumboFrame UnsupportedOperation.InstancesEnableJumboWithoutReboot UnsupportedOperation.InstancesProtected UnsupportedOperation.InvalidDisk UnsupportedOperation.InvalidInstancesOwner UnsupportedOperation.InvalidRegionDiskEncrypt UnsupportedOperation.KeyPairUnsupportedWindows UnsupportedOperation.MinCountUnsupportedChargeType UnsupportedOperation.MinCountUnsupportedRegion UnsupportedOperation.NoInstanceTypeSupportSpot UnsupportedOperation.NotSupportImportInstancesActionTimer UnsupportedOperation.OnlyForPrepaidAccount UnsupportedOperation.PeriodicContractNotSupportManualRenew UnsupportedOperation.RawLocalDiskInsReinstalltoQcow2 UnsupportedOperation.RedHatInstanceTerminateUnsupported UnsupportedOperation.RedHatInstanceUnsupported UnsupportedOperation.Region UnsupportedOperation.SpecialInstanceType UnsupportedOperation.SpotUnsupportedRegion UnsupportedOperation.UnderwritingInstanceTypeOnlySupportAutoRenew UnsupportedOperation.UnsupportedInternationalUser UnsupportedOperation.UserLimitOperationExceedQuota VpcAddrNotInSubNet VpcIpIsUsed";

    /// Codes that really are "not ours to decide": a person reads the message.
    const ALLOWED_TERMINAL: &[&str] = &[
        "FailedOperation.Unreturnable",
        "OperationDenied.ChcInstallCloudImageWithoutDeployNetwork",
        "OperationDenied.NotBandwidthShiftUpUserApplyEdgeZoneEip",
    ];

    #[test]
    fn reference_table_classes() {
        let wrong: Vec<String> = REFERENCE_TABLE
            .iter()
            .filter(|(code, want)| classify_code(code) != *want)
            .map(|(code, want)| format!("{code}: want {want:?}, got {:?}", classify_code(code)))
            .collect();
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    }

    #[test]
    fn operator_action_codes_all_get_a_decision() {
        let codes: Vec<&str> = OPERATOR_ACTION_CODES.split_whitespace().collect();
        assert!(codes.len() > 200, "the embedded list is incomplete");
        let undecided: Vec<&str> = codes
            .iter()
            .copied()
            .filter(|c| classify_code(c) == Terminal && !ALLOWED_TERMINAL.contains(c))
            .collect();
        assert!(
            undecided.is_empty(),
            "fall through to Terminal: {undecided:?}"
        );
    }

    #[test]
    fn retry_and_person_flags() {
        assert!(RateLimited.is_retryable() && !RateLimited.needs_person());
        assert!(Transient.is_retryable() && !Transient.needs_person());
        for class in [Credentials, Balance, Capacity, Quota, InvalidSpec, Terminal] {
            assert!(!class.is_retryable(), "{class:?}");
            assert!(class.needs_person(), "{class:?}");
        }
        for class in [NotFound, InstanceState] {
            assert!(!class.is_retryable() && !class.needs_person(), "{class:?}");
        }
    }

    fn api(code: &str) -> CloudError {
        CloudError::Api {
            action: "TerminateInstances".into(),
            code: code.into(),
            message: "m".into(),
            request_id: "r-1".into(),
        }
    }

    #[test]
    fn already_terminated_codes() {
        for code in [
            "InvalidInstanceId.NotFound",
            "UnsupportedOperation.InstanceStateTerminated",
            "UnsupportedOperation.InstanceStateTerminating",
        ] {
            assert!(api(code).is_already_terminated(), "{code}");
        }
        assert!(!api("UnsupportedOperation.InstanceStatePending").is_already_terminated());
        assert!(!api("InternalError").is_already_terminated());
    }

    #[test]
    fn unknown_region_and_zone_codes_need_a_person() {
        assert!(api("UnsupportedRegion").is_region_unsupported());
        assert!(!api("InvalidZone.MismatchRegion").is_region_unsupported());
        assert!(!api("InvalidRegion.NotFound").is_region_unsupported());
        for code in [
            "UnsupportedRegion",
            "InvalidZone.MismatchRegion",
            "InvalidRegion.NotFound",
        ] {
            assert!(
                api(code).needs_person() && !api(code).is_retryable(),
                "{code}"
            );
        }
        // A sold-out zone may come back: slow retry, still no storm.
        let sold_out = api("ResourceInsufficient.AvailabilityZoneSoldOut");
        assert_eq!(sold_out.class(), Capacity);
    }

    #[test]
    fn client_side_errors_have_codes_and_classes() {
        let status = |s| CloudError::HttpStatus {
            action: "DescribeInstances".into(),
            status: s,
        };
        assert_eq!(status(503).class(), Transient);
        assert_eq!(status(429).class(), RateLimited);
        assert_eq!(status(403).class(), Terminal);
        assert_eq!(status(503).code(), CODE_HTTP_STATUS);
        let decode = CloudError::Decode {
            action: "DescribeInstances".into(),
            message: "expected value".into(),
        };
        assert_eq!(decode.code(), CODE_DECODE);
        assert_eq!(CloudError::Config("x".into()).class(), InvalidSpec);
    }

    #[test]
    fn api_error_display_carries_code_message_and_request_id() {
        let e = api("InvalidInstanceId.NotFound");
        let text = e.to_string();
        assert!(text.contains("InvalidInstanceId.NotFound"), "{text}");
        assert!(text.contains("r-1"), "{text}");
        assert_eq!(e.request_id(), Some("r-1"));
        assert_eq!(e.message(), "m");
    }
}
