//! One simulated instance and the shapes it is shown in: the API's `Instance` object and
//! the admin listing.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::operation::Operation;
use crate::config::StockPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    LaunchFailed,
    Starting,
    Stopping,
    Stopped,
    Rebooting,
    Terminating,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::LaunchFailed => "LAUNCH_FAILED",
            Self::Starting => "STARTING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Rebooting => "REBOOTING",
            Self::Terminating => "TERMINATING",
        }
    }

    /// The state as the suffix of its refusal code, `UnsupportedOperation.InstanceState<…>`.
    pub fn code_suffix(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::LaunchFailed => "LaunchFailed",
            Self::Starting => "Starting",
            Self::Stopping => "Stopping",
            Self::Stopped => "Stopped",
            Self::Rebooting => "Rebooting",
            Self::Terminating => "Terminating",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeType {
    Postpaid,
    Prepaid { period: u32, renew_flag: String },
    Spot { max_price: Option<String> },
}

impl ChargeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Postpaid => "POSTPAID_BY_HOUR",
            Self::Prepaid { .. } => "PREPAID",
            Self::Spot { .. } => "SPOTPAID",
        }
    }

    pub fn is_spot(&self) -> bool {
        matches!(self, Self::Spot { .. })
    }

    /// The stock launches of this charge type draw from.
    pub fn pool(&self) -> StockPool {
        if self.is_spot() {
            StockPool::Spot
        } else {
            StockPool::Regular
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Disk {
    pub disk_type: String,
    pub disk_id: String,
    pub disk_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_with_instance: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    /// Creation order; answers list instances in this order.
    pub seq: u64,
    /// The SecretId that created it; each account sees only its own instances.
    pub owner: String,
    pub region: String,
    pub zone: String,
    pub project_id: i64,
    pub instance_type: String,
    pub cpu: u32,
    pub memory_gib: u32,
    pub name: String,
    pub host_name: String,
    pub charge: ChargeType,
    pub image_id: String,
    pub system_disk: Disk,
    pub data_disks: Vec<Disk>,
    pub vpc_id: String,
    pub subnet_id: String,
    pub private_ip: Ipv4Addr,
    pub public_ip: Option<Ipv4Addr>,
    /// InternetMaxBandwidthOut > 0 and PublicIpAssigned not false.
    pub wants_public_ip: bool,
    pub internet_charge_type: Option<String>,
    pub internet_max_bandwidth_out: i64,
    pub security_group_ids: Vec<String>,
    pub key_ids: Vec<String>,
    pub tags: Vec<Tag>,
    pub client_token: Option<String>,
    pub state: InstanceState,
    pub latest_operation: Option<String>,
    pub latest_operation_state: Option<String>,
    pub latest_operation_request_id: Option<String>,
    pub latest_operation_error_msg: Option<String>,
    /// When set, the launch ends in LAUNCH_FAILED with this message.
    pub launch_failure: Option<String>,
    pub created_time: String,
    pub expired_time: Option<String>,
    pub uuid: String,
    pub disable_api_termination: bool,
    pub cam_role_name: String,
    pub disaster_recover_group_ids: Vec<String>,
    pub hpc_cluster_id: String,
    /// Balance frozen for this instance, returned when it is gone.
    pub frozen: f64,
    /// How it was stopped, while STOPPED (StopInstances' StoppedMode).
    pub stopped_mode: Option<StoppedMode>,
    /// The asynchronous operation in progress (LatestOperationState OPERATING).
    pub operation: Option<Operation>,
    /// ResetInstance calls accepted for this instance, so tests can assert "exactly once".
    pub reimage_count: u32,
    /// Base64 user data, as set at launch or by ModifyInstancesAttribute.
    pub user_data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedMode {
    KeepCharging,
    /// Compute released and the public IP given back; only StartInstances works meanwhile.
    StopCharging,
}

impl StoppedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeepCharging => "KEEP_CHARGING",
            Self::StopCharging => "STOP_CHARGING",
        }
    }
}

impl Instance {
    /// `StopChargingMode` of DescribeInstances: the mode while stopped, else NOT_APPLICABLE.
    pub fn stop_charging_mode(&self) -> &'static str {
        match (self.state, self.stopped_mode) {
            (InstanceState::Stopped, Some(mode)) => mode.as_str(),
            _ => "NOT_APPLICABLE",
        }
    }

    pub fn is_stopped_without_charging(&self) -> bool {
        self.state == InstanceState::Stopped && self.stopped_mode == Some(StoppedMode::StopCharging)
    }

    pub fn is_operating(&self) -> bool {
        self.latest_operation_state.as_deref() == Some("OPERATING")
    }
}

/// The `Instance` object of DescribeInstances, with `null` where the real API gives null.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiInstance<'a> {
    placement: ApiPlacement<'a>,
    instance_id: &'a str,
    instance_type: &'a str,
    #[serde(rename = "CPU")]
    cpu: u32,
    memory: u32,
    restrict_state: &'static str,
    instance_name: &'a str,
    instance_charge_type: &'static str,
    system_disk: &'a Disk,
    data_disks: Option<&'a [Disk]>,
    private_ip_addresses: [String; 1],
    public_ip_addresses: Option<[String; 1]>,
    internet_accessible: ApiInternet<'a>,
    virtual_private_cloud: ApiVpc<'a>,
    image_id: &'a str,
    renew_flag: Option<&'a str>,
    created_time: &'a str,
    expired_time: Option<&'a str>,
    os_name: &'static str,
    security_group_ids: &'a [String],
    login_settings: ApiLogin<'a>,
    instance_state: &'static str,
    tags: &'a [Tag],
    stop_charging_mode: &'static str,
    uuid: &'a str,
    latest_operation: Option<&'a str>,
    latest_operation_state: Option<&'a str>,
    latest_operation_request_id: Option<&'a str>,
    disaster_recover_group_id: &'a str,
    #[serde(rename = "IPv6Addresses")]
    ipv6_addresses: Option<()>,
    cam_role_name: &'a str,
    hpc_cluster_id: &'a str,
    rdma_ip_addresses: Option<()>,
    dedicated_cluster_id: &'a str,
    isolated_source: &'static str,
    #[serde(rename = "GPUInfo")]
    gpu_info: Option<()>,
    license_type: &'static str,
    disable_api_termination: bool,
    default_login_user: &'static str,
    default_login_port: u32,
    latest_operation_error_msg: Option<&'a str>,
    #[serde(rename = "PublicIPv6Addresses")]
    public_ipv6_addresses: Option<()>,
    metadata: Option<()>,
    cpu_topology: Option<()>,
    enable_jumbo_frame: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiPlacement<'a> {
    zone: &'a str,
    project_id: i64,
    host_id: Option<()>,
    host_ids: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiInternet<'a> {
    internet_charge_type: Option<&'a str>,
    internet_max_bandwidth_out: i64,
    public_ip_assigned: Option<()>,
    bandwidth_package_id: Option<()>,
    internet_service_provider: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiVpc<'a> {
    vpc_id: &'a str,
    subnet_id: &'a str,
    as_vpc_gateway: bool,
    private_ip_addresses: Option<()>,
    ipv6_address_count: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiLogin<'a> {
    password: Option<()>,
    key_ids: Option<&'a [String]>,
    keep_image_login: Option<()>,
}

impl Instance {
    pub fn api_view(&self) -> ApiInstance<'_> {
        let renew_flag = match &self.charge {
            ChargeType::Prepaid { renew_flag, .. } => Some(renew_flag.as_str()),
            _ => None,
        };
        ApiInstance {
            placement: ApiPlacement {
                zone: &self.zone,
                project_id: self.project_id,
                host_id: None,
                host_ids: None,
            },
            instance_id: &self.id,
            instance_type: &self.instance_type,
            cpu: self.cpu,
            memory: self.memory_gib,
            restrict_state: "NORMAL",
            instance_name: &self.name,
            instance_charge_type: self.charge.as_str(),
            system_disk: &self.system_disk,
            data_disks: (!self.data_disks.is_empty()).then_some(self.data_disks.as_slice()),
            private_ip_addresses: [self.private_ip.to_string()],
            public_ip_addresses: self.public_ip.map(|ip| [ip.to_string()]),
            internet_accessible: ApiInternet {
                internet_charge_type: self.internet_charge_type.as_deref(),
                internet_max_bandwidth_out: self.internet_max_bandwidth_out,
                public_ip_assigned: None,
                bandwidth_package_id: None,
                internet_service_provider: None,
            },
            virtual_private_cloud: ApiVpc {
                vpc_id: &self.vpc_id,
                subnet_id: &self.subnet_id,
                as_vpc_gateway: false,
                private_ip_addresses: None,
                ipv6_address_count: None,
            },
            image_id: &self.image_id,
            renew_flag,
            created_time: &self.created_time,
            expired_time: self.expired_time.as_deref(),
            os_name: "TencentOS Server 3.1 (TK4)",
            security_group_ids: &self.security_group_ids,
            login_settings: ApiLogin {
                password: None,
                key_ids: (!self.key_ids.is_empty()).then_some(self.key_ids.as_slice()),
                keep_image_login: None,
            },
            instance_state: self.state.as_str(),
            tags: &self.tags,
            stop_charging_mode: self.stop_charging_mode(),
            uuid: &self.uuid,
            latest_operation: self.latest_operation.as_deref(),
            latest_operation_state: self.latest_operation_state.as_deref(),
            latest_operation_request_id: self.latest_operation_request_id.as_deref(),
            disaster_recover_group_id: self
                .disaster_recover_group_ids
                .first()
                .map_or("", String::as_str),
            ipv6_addresses: None,
            cam_role_name: &self.cam_role_name,
            hpc_cluster_id: &self.hpc_cluster_id,
            rdma_ip_addresses: None,
            dedicated_cluster_id: "",
            isolated_source: "NOTISOLATED",
            gpu_info: None,
            license_type: "TencentCloud",
            disable_api_termination: self.disable_api_termination,
            default_login_user: "root",
            default_login_port: 22,
            latest_operation_error_msg: self.latest_operation_error_msg.as_deref(),
            public_ipv6_addresses: None,
            metadata: None,
            cpu_topology: None,
            enable_jumbo_frame: false,
        }
    }

    pub fn admin_view(&self) -> AdminInstance<'_> {
        AdminInstance {
            instance_id: &self.id,
            instance_state: self.state.as_str(),
            zone: &self.zone,
            instance_type: &self.instance_type,
            instance_charge_type: self.charge.as_str(),
            private_ip_addresses: vec![self.private_ip.to_string()],
            public_ip_addresses: self.public_ip.iter().map(ToString::to_string).collect(),
            tags: &self.tags,
            client_token: self.client_token.as_deref(),
            secret_id: &self.owner,
            latest_operation_error_msg: self.latest_operation_error_msg.as_deref(),
            instance_name: &self.name,
            security_group_ids: &self.security_group_ids,
            image_id: &self.image_id,
            stop_charging_mode: self.stop_charging_mode(),
            latest_operation: self.latest_operation.as_deref(),
            latest_operation_state: self.latest_operation_state.as_deref(),
            latest_operation_request_id: self.latest_operation_request_id.as_deref(),
            reimage_count: self.reimage_count,
        }
    }
}

/// One entry of `GET /_sim/instances`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdminInstance<'a> {
    pub instance_id: &'a str,
    pub instance_state: &'static str,
    pub zone: &'a str,
    pub instance_type: &'a str,
    pub instance_charge_type: &'static str,
    pub private_ip_addresses: Vec<String>,
    pub public_ip_addresses: Vec<String>,
    pub tags: &'a [Tag],
    pub client_token: Option<&'a str>,
    pub secret_id: &'a str,
    pub latest_operation_error_msg: Option<&'a str>,
    pub instance_name: &'a str,
    pub security_group_ids: &'a [String],
    pub image_id: &'a str,
    pub stop_charging_mode: &'static str,
    pub latest_operation: Option<&'a str>,
    pub latest_operation_state: Option<&'a str>,
    pub latest_operation_request_id: Option<&'a str>,
    pub reimage_count: u32,
}
