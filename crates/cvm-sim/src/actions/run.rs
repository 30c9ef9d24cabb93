//! RunInstances: validation as the real API does it, then quota, capacity and balance,
//! then the launch.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::naming::{expand, is_valid_host_name};
use super::params::{is_resource_id, parse, random_id, reject_unknown};
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::pricing::InstanceTypeSpec;
use crate::state::SimState;
use crate::state::instance::{ChargeType, Disk, Instance, InstanceState, Tag};
use crate::state::network::derived_id;

const KNOWN: &[&str] = &[
    "InstanceChargeType",
    "InstanceChargePrepaid",
    "Placement",
    "InstanceType",
    "ImageId",
    "SystemDisk",
    "DataDisks",
    "VirtualPrivateCloud",
    "InternetAccessible",
    "InstanceCount",
    "MinCount",
    "InstanceName",
    "LoginSettings",
    "SecurityGroupIds",
    "EnhancedService",
    "ClientToken",
    "HostName",
    "ActionTimer",
    "DisasterRecoverGroupIds",
    "TagSpecification",
    "InstanceMarketOptions",
    "UserData",
    "Metadata",
    "DryRun",
    "CpuTopology",
    "CamRoleName",
    "HpcClusterId",
    "LaunchTemplate",
    "DedicatedClusterId",
    "ChcIds",
    "PartitionNumber",
    "DisableApiTermination",
    "EnableJumboFrame",
    "NetworkInterfaces",
];

const DEFAULT_INSTANCE_TYPE: &str = "S5.MEDIUM2";
const MAX_INSTANCE_COUNT: i64 = 500;
const PREPAID_PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60];
const SYSTEM_DISK_TYPES: &[&str] = &[
    "LOCAL_BASIC",
    "LOCAL_SSD",
    "CLOUD_BASIC",
    "CLOUD_SSD",
    "CLOUD_PREMIUM",
    "CLOUD_BSSD",
    "CLOUD_HSSD",
    "CLOUD_TSSD",
];
const DATA_DISK_TYPES: &[&str] = &[
    "LOCAL_BASIC",
    "LOCAL_SSD",
    "LOCAL_NVME",
    "LOCAL_PRO",
    "CLOUD_BASIC",
    "CLOUD_PREMIUM",
    "CLOUD_SSD",
    "CLOUD_HSSD",
    "CLOUD_TSSD",
    "CLOUD_BSSD",
];
const INTERNET_CHARGE_TYPES: &[&str] = &[
    "BANDWIDTH_PREPAID",
    "TRAFFIC_POSTPAID_BY_HOUR",
    "BANDWIDTH_POSTPAID_BY_HOUR",
    "BANDWIDTH_PACKAGE",
];
const TAG_RESOURCE_TYPES: &[&str] = &["instance", "host", "image", "keypair", "ps", "hpc"];
const RESERVED_TAG_PREFIXES: &[&str] = &["qcloud", "tencent", "project"];
const MAX_USER_DATA_BYTES: usize = 16 * 1024;
const HOURS_PER_MONTH: f64 = 720.0;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_charge_type: Option<String>,
    instance_charge_prepaid: Option<Prepaid>,
    placement: Option<Placement>,
    instance_type: Option<String>,
    image_id: Option<String>,
    system_disk: Option<SystemDisk>,
    data_disks: Option<Vec<DataDisk>>,
    virtual_private_cloud: Option<Vpc>,
    internet_accessible: Option<Internet>,
    instance_count: Option<i64>,
    min_count: Option<i64>,
    instance_name: Option<String>,
    login_settings: Option<Login>,
    security_group_ids: Option<Vec<String>>,
    client_token: Option<String>,
    host_name: Option<String>,
    disaster_recover_group_ids: Option<Vec<String>>,
    tag_specification: Option<Vec<TagSpecification>>,
    instance_market_options: Option<MarketOptions>,
    user_data: Option<String>,
    dry_run: Option<bool>,
    cpu_topology: Option<CpuTopology>,
    cam_role_name: Option<String>,
    hpc_cluster_id: Option<String>,
    launch_template: Option<LaunchTemplate>,
    disable_api_termination: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Prepaid {
    period: Option<i64>,
    renew_flag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Placement {
    zone: Option<String>,
    project_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SystemDisk {
    disk_type: Option<String>,
    disk_size: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataDisk {
    disk_type: Option<String>,
    disk_size: Option<i64>,
    delete_with_instance: Option<bool>,
    encrypt: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vpc {
    vpc_id: Option<String>,
    subnet_id: Option<String>,
    private_ip_addresses: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Internet {
    internet_charge_type: Option<String>,
    internet_max_bandwidth_out: Option<i64>,
    public_ip_assigned: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Login {
    password: Option<String>,
    key_ids: Option<Vec<String>>,
    keep_image_login: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagSpecification {
    resource_type: Option<String>,
    tags: Option<Vec<TagIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagIn {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MarketOptions {
    market_type: Option<String>,
    spot_options: Option<SpotOptions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpotOptions {
    max_price: Option<String>,
    spot_instance_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CpuTopology {
    core_count: Option<i64>,
    thread_per_core: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LaunchTemplate {
    launch_template_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Response<'a> {
    instance_id_set: &'a [String],
}

/// A request that passed validation, ready to be launched.
struct Plan {
    zone: String,
    project_id: i64,
    instance_type: String,
    spec: InstanceTypeSpec,
    image_id: String,
    charge: ChargeType,
    count: u32,
    min_count: Option<u32>,
    name: String,
    host_name: Option<String>,
    system_disk: (String, i64),
    data_disks: Vec<(String, i64, bool, bool)>,
    vpc_id: String,
    subnet_id: String,
    private_ips: Vec<String>,
    internet_charge_type: Option<String>,
    bandwidth_out: i64,
    wants_public_ip: bool,
    security_group_ids: Vec<String>,
    key_ids: Vec<String>,
    tags: Vec<Tag>,
    disaster_recover_group_ids: Vec<String>,
    cam_role_name: String,
    hpc_cluster_id: String,
    disable_api_termination: bool,
    client_token: Option<String>,
    user_data: Option<String>,
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, KNOWN)?;
    let request: Request = parse(params)?;
    if let Some(token) = &request.client_token
        && token.len() > 64
    {
        return Err(ApiError::new(
            "InvalidClientToken.TooLong",
            "The specified ClientToken exceeds the maximum length of 64 bytes.",
        ));
    }
    let dry_run = request.dry_run.unwrap_or(false);
    if let Some(token) = request.client_token.as_deref().filter(|t| !t.is_empty())
        && !dry_run
        && let Some(ids) = state.store.token_ids(ctx.owner, token)
    {
        // Same token, same answer: a retry must never create a second batch.
        return to_json(&Response {
            instance_id_set: ids,
        });
    }
    let plan = validate(ctx, state, request)?;
    let count = check_business_limits(ctx, state, &plan)?;
    if dry_run {
        return Err(ApiError::new(
            "DryRunOperation",
            "DryRun: the request would have succeeded, but the DryRun parameter was set.",
        ));
    }
    let ids = launch(ctx, state, &plan, count);
    remember(state, ctx.owner, plan.client_token.as_deref(), &ids);
    to_json(&Response {
        instance_id_set: &ids,
    })
}

/// Remembers which ids a token created, so retries get the same answer.
fn remember(state: &mut SimState, owner: &str, token: Option<&str>, ids: &[String]) {
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        state.store.remember_token(owner, token, ids.to_vec());
    }
}

fn validate(ctx: &Ctx<'_>, state: &SimState, r: Request) -> ApiResult<Plan> {
    if let Some(template) = &r.launch_template {
        let id = template.launch_template_id.as_deref().unwrap_or_default();
        return Err(if is_resource_id(id, "lt") {
            ApiError::new(
                "InvalidParameterValue.LaunchTemplateNotFound",
                format!("The launch template `{id}` does not exist."),
            )
        } else {
            ApiError::new(
                "InvalidParameterValue.LaunchTemplateIdMalformed",
                format!("The launch template id `{id}` is malformed."),
            )
        });
    }
    let placement = r
        .placement
        .ok_or_else(|| ApiError::missing_parameter("Placement"))?;
    let zone = placement
        .zone
        .ok_or_else(|| ApiError::missing_parameter("Placement.Zone"))?;
    state.catalogue.check_launch_zone(ctx.region, &zone)?;
    let image_id = r
        .image_id
        .ok_or_else(|| ApiError::missing_parameter("ImageId"))?;
    if !is_resource_id(&image_id, "img") {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("Invalid image ID format: `{image_id}`."),
        ));
    }
    let instance_type = r
        .instance_type
        .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string());
    let spec = InstanceTypeSpec::parse(&instance_type)?;

    let charge = charge_type(
        r.instance_charge_type.as_deref(),
        r.instance_charge_prepaid,
        r.instance_market_options,
        &spec,
    )?;

    let count = r.instance_count.unwrap_or(1);
    if !(1..=MAX_INSTANCE_COUNT).contains(&count) {
        return Err(ApiError::range(
            "InstanceCount",
            format!("must be between 1 and {MAX_INSTANCE_COUNT}, got {count}"),
        ));
    }
    let count = count as u32;
    let min_count = match r.min_count {
        None => None,
        Some(m) if (1..=i64::from(count)).contains(&m) => Some(m as u32),
        Some(m) => {
            return Err(ApiError::new(
                "InvalidParameterValue.InvalidParameterMinCount",
                format!("`MinCount` must be between 1 and InstanceCount ({count}), got {m}."),
            ));
        }
    };

    let name = r.instance_name.unwrap_or_else(|| "未命名".to_string());
    if name.chars().count() > 128 {
        return Err(ApiError::new(
            "InvalidInstanceName.TooLong",
            "The specified InstanceName exceeds the maximum length of 128 bytes.",
        ));
    }
    if let Some(host) = &r.host_name {
        let sample = expand(host, 0, count, Some("10.255.255.254"));
        if !is_valid_host_name(&sample) {
            return Err(ApiError::new(
                "InvalidParameterValue.IllegalHostName",
                format!("The host name `{host}` is not valid."),
            ));
        }
    }

    let system_disk = match r.system_disk {
        None => ("CLOUD_PREMIUM".to_string(), 50),
        Some(d) => {
            let disk_type = d.disk_type.unwrap_or_else(|| "CLOUD_PREMIUM".into());
            one_of("SystemDisk.DiskType", &disk_type, SYSTEM_DISK_TYPES)?;
            let size = d.disk_size.unwrap_or(50);
            if !(20..=2048).contains(&size) {
                return Err(ApiError::range(
                    "SystemDisk.DiskSize",
                    format!("must be between 20 and 2048 GiB, got {size}"),
                ));
            }
            (disk_type, size)
        }
    };
    let data_disks = data_disks(r.data_disks.unwrap_or_default())?;

    let (vpc_id, subnet_id, private_ips) = vpc(ctx, &zone, r.virtual_private_cloud, count)?;
    state
        .private_ips
        .check_requested(&subnet_id, &private_ips)?;

    let (internet_charge_type, bandwidth_out, wants_public_ip) = internet(r.internet_accessible)?;

    let key_ids = login(r.login_settings)?;

    let security_group_ids = match r.security_group_ids {
        None => vec![derived_id("sg", &format!("{}/{}", ctx.owner, ctx.region))],
        Some(ids) => {
            if ids.len() > 5 {
                return Err(ApiError::new(
                    "LimitExceeded.AssociateUSGLimitExceeded",
                    "An instance can be bound to at most 5 security groups.",
                ));
            }
            if let Some(bad) = ids.iter().find(|id| !is_resource_id(id, "sg")) {
                return Err(ApiError::new(
                    "InvalidSgId.Malformed",
                    format!("The security group ID `{bad}` is in the wrong format."),
                ));
            }
            ids
        }
    };

    let tags = tags(r.tag_specification.unwrap_or_default())?;

    if let Some(data) = &r.user_data {
        check_user_data(data)?;
    }
    let disaster_recover_group_ids = r.disaster_recover_group_ids.unwrap_or_default();
    if disaster_recover_group_ids.len() > 1 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            "Only one placement group can be given in `DisasterRecoverGroupIds`.",
        ));
    }
    if let Some(topology) = &r.cpu_topology
        && (topology.core_count.is_none() || topology.thread_per_core.is_none())
    {
        return Err(ApiError::new(
            "InvalidParameter.LackCoreCountOrThreadPerCore",
            "`CpuTopology` needs both CoreCount and ThreadPerCore.",
        ));
    }

    Ok(Plan {
        zone,
        project_id: placement.project_id.unwrap_or(0),
        instance_type,
        spec,
        image_id,
        charge,
        count,
        min_count,
        name,
        host_name: r.host_name,
        system_disk,
        data_disks,
        vpc_id,
        subnet_id,
        private_ips,
        internet_charge_type,
        bandwidth_out,
        wants_public_ip,
        security_group_ids,
        key_ids,
        tags,
        disaster_recover_group_ids,
        cam_role_name: r.cam_role_name.unwrap_or_default(),
        hpc_cluster_id: r.hpc_cluster_id.unwrap_or_default(),
        disable_api_termination: r.disable_api_termination.unwrap_or(false),
        client_token: r.client_token.filter(|t| !t.is_empty()),
        user_data: r.user_data,
    })
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "`{name}` must be one of {}, got `{value}`.",
            allowed.join(", ")
        )))
    }
}

fn charge_type(
    name: Option<&str>,
    prepaid: Option<Prepaid>,
    market: Option<MarketOptions>,
    spec: &InstanceTypeSpec,
) -> ApiResult<ChargeType> {
    let name = name.unwrap_or("POSTPAID_BY_HOUR");
    if market.is_some() && name != "SPOTPAID" {
        return Err(ApiError::invalid_combination(
            "`InstanceMarketOptions` can only be used with InstanceChargeType SPOTPAID.",
        ));
    }
    match name {
        "POSTPAID_BY_HOUR" => Ok(ChargeType::Postpaid),
        "PREPAID" => {
            let prepaid =
                prepaid.ok_or_else(|| ApiError::missing_parameter("InstanceChargePrepaid"))?;
            let period = prepaid
                .period
                .ok_or_else(|| ApiError::missing_parameter("InstanceChargePrepaid.Period"))?;
            if !PREPAID_PERIODS.contains(&period) {
                return Err(ApiError::new(
                    "InvalidPeriod",
                    "Invalid period. Valid values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60]; unit: month.",
                ));
            }
            let renew_flag = prepaid
                .renew_flag
                .unwrap_or_else(|| "NOTIFY_AND_MANUAL_RENEW".into());
            one_of(
                "InstanceChargePrepaid.RenewFlag",
                &renew_flag,
                &[
                    "NOTIFY_AND_AUTO_RENEW",
                    "NOTIFY_AND_MANUAL_RENEW",
                    "DISABLE_NOTIFY_AND_MANUAL_RENEW",
                ],
            )?;
            Ok(ChargeType::Prepaid {
                period: period as u32,
                renew_flag,
            })
        }
        "SPOTPAID" => {
            let Some(market) = market else {
                // China docs: without options the bid is the current fixed-discount price.
                return Ok(ChargeType::Spot { max_price: None });
            };
            let market_type = market.market_type.unwrap_or_else(|| "spot".into());
            if market_type != "spot" {
                return Err(ApiError::invalid_value(format!(
                    "`InstanceMarketOptions.MarketType` must be `spot`, got `{market_type}`."
                )));
            }
            let options = market
                .spot_options
                .ok_or_else(|| ApiError::missing_parameter("InstanceMarketOptions.SpotOptions"))?;
            let max_price = options.max_price.ok_or_else(|| {
                ApiError::missing_parameter("InstanceMarketOptions.SpotOptions.MaxPrice")
            })?;
            let bid: f64 = max_price
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p > 0.0)
                .ok_or_else(|| {
                    ApiError::invalid_value(format!(
                        "`MaxPrice` must be a positive decimal string, got `{max_price}`."
                    ))
                })?;
            if let Some(kind) = &options.spot_instance_type
                && !kind.eq_ignore_ascii_case("one-time")
            {
                return Err(ApiError::invalid_value(format!(
                    "`SpotInstanceType` must be `one-time`, got `{kind}`."
                )));
            }
            if bid < spec.spot_hourly_price() {
                return Err(ApiError::new(
                    "InvalidParameterValue.InsufficientPrice",
                    format!(
                        "The bid {max_price} is lower than the market price {:.4}.",
                        spec.spot_hourly_price()
                    ),
                ));
            }
            Ok(ChargeType::Spot {
                max_price: Some(max_price),
            })
        }
        "CDHPAID" | "CDCPAID" | "UNDERWRITE" => Err(ApiError::new(
            "UnsupportedOperation",
            format!("InstanceChargeType `{name}` is not supported by cvm-sim."),
        )),
        other => Err(ApiError::invalid_value(format!(
            "`InstanceChargeType` must be one of PREPAID, POSTPAID_BY_HOUR, SPOTPAID, CDHPAID, CDCPAID; got `{other}`."
        ))),
    }
}

fn data_disks(disks: Vec<DataDisk>) -> ApiResult<Vec<(String, i64, bool, bool)>> {
    if disks.len() > 21 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            "At most 21 data disks can be attached.",
        ));
    }
    disks
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let disk_type = d.disk_type.unwrap_or_else(|| "LOCAL_BASIC".into());
            one_of(
                &format!("DataDisks.{i}.DiskType"),
                &disk_type,
                DATA_DISK_TYPES,
            )?;
            let size = d
                .disk_size
                .ok_or_else(|| ApiError::missing_parameter(&format!("DataDisks.{i}.DiskSize")))?;
            if !(10..=32_000).contains(&size) || size % 10 != 0 {
                return Err(ApiError::range(
                    &format!("DataDisks.{i}.DiskSize"),
                    format!("must be a multiple of 10 between 10 and 32000 GiB, got {size}"),
                ));
            }
            Ok((
                disk_type,
                size,
                d.delete_with_instance.unwrap_or(true),
                d.encrypt.unwrap_or(false),
            ))
        })
        .collect()
}

fn vpc(
    ctx: &Ctx<'_>,
    zone: &str,
    vpc: Option<Vpc>,
    count: u32,
) -> ApiResult<(String, String, Vec<String>)> {
    let default_vpc = || derived_id("vpc", &format!("{}/{}", ctx.owner, ctx.region));
    let default_subnet = || derived_id("subnet", &format!("{}/{zone}", ctx.owner));
    let Some(vpc) = vpc else {
        return Ok((default_vpc(), default_subnet(), Vec::new()));
    };
    let vpc_id = vpc
        .vpc_id
        .ok_or_else(|| ApiError::missing_parameter("VirtualPrivateCloud.VpcId"))?;
    let subnet_id = vpc
        .subnet_id
        .ok_or_else(|| ApiError::missing_parameter("VirtualPrivateCloud.SubnetId"))?;
    let vpc_id = if vpc_id == "DEFAULT" {
        default_vpc()
    } else if is_resource_id(&vpc_id, "vpc") {
        vpc_id
    } else {
        return Err(ApiError::new(
            "InvalidParameterValue.VpcIdMalformed",
            format!("The VPC ID `{vpc_id}` is invalid; it should look like vpc-xxxxxxxx."),
        ));
    };
    let subnet_id = if subnet_id == "DEFAULT" {
        default_subnet()
    } else if is_resource_id(&subnet_id, "subnet") {
        subnet_id
    } else {
        return Err(ApiError::new(
            "InvalidParameterValue.SubnetIdMalformed",
            format!("Invalid subnet ID `{subnet_id}`; it should look like subnet-xxxxxxxx."),
        ));
    };
    let ips = vpc.private_ip_addresses.unwrap_or_default();
    if ips.len() > 20 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            "`VirtualPrivateCloud.PrivateIpAddresses` accepts at most 20 addresses.",
        ));
    }
    if !ips.is_empty() && ips.len() != count as usize {
        return Err(ApiError::invalid_value(format!(
            "The number of `VirtualPrivateCloud.PrivateIpAddresses` ({}) must equal InstanceCount ({count}).",
            ips.len()
        )));
    }
    Ok((vpc_id, subnet_id, ips))
}

fn internet(internet: Option<Internet>) -> ApiResult<(Option<String>, i64, bool)> {
    let Some(internet) = internet else {
        return Ok((None, 0, false));
    };
    let bandwidth = internet.internet_max_bandwidth_out.unwrap_or(0);
    if !(0..=1024).contains(&bandwidth) {
        return Err(ApiError::range(
            "InternetAccessible.InternetMaxBandwidthOut",
            format!("must be between 0 and 1024 Mbps, got {bandwidth}"),
        ));
    }
    if let Some(kind) = &internet.internet_charge_type {
        one_of(
            "InternetAccessible.InternetChargeType",
            kind,
            INTERNET_CHARGE_TYPES,
        )?;
    }
    if internet.public_ip_assigned == Some(true) && bandwidth == 0 {
        return Err(ApiError::invalid_combination(
            "A public IP cannot be assigned when InternetMaxBandwidthOut is 0.",
        ));
    }
    let charge_type = internet
        .internet_charge_type
        .or_else(|| (bandwidth > 0).then(|| "TRAFFIC_POSTPAID_BY_HOUR".to_string()));
    let wants_public_ip = bandwidth > 0 && internet.public_ip_assigned != Some(false);
    Ok((charge_type, bandwidth, wants_public_ip))
}

pub(super) fn login(login: Option<Login>) -> ApiResult<Vec<String>> {
    let Some(login) = login else {
        return Ok(Vec::new());
    };
    let key_ids = login.key_ids.unwrap_or_default();
    let has_password = login.password.is_some();
    if has_password && !key_ids.is_empty() {
        return Err(ApiError::invalid_combination(
            "`LoginSettings.Password` and `LoginSettings.KeyIds` cannot be used together.",
        ));
    }
    if let Some(keep) = &login.keep_image_login {
        if !keep.eq_ignore_ascii_case("true") && !keep.eq_ignore_ascii_case("false") {
            return Err(ApiError::invalid_value(format!(
                "`LoginSettings.KeepImageLogin` must be the string \"true\" or \"false\", got `{keep}`."
            )));
        }
        if keep.eq_ignore_ascii_case("true") && (has_password || !key_ids.is_empty()) {
            return Err(ApiError::invalid_combination(
                "`KeepImageLogin` cannot be combined with a password or key IDs.",
            ));
        }
    }
    if let Some(password) = &login.password
        && !is_valid_linux_password(password)
    {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidPassword",
            "Invalid password. The specified password does not meet the complexity requirements (e.g., too long or too short).",
        ));
    }
    if let Some(bad) = key_ids.iter().find(|id| !is_resource_id(id, "skey")) {
        return Err(ApiError::new(
            "InvalidKeyPairId.Malformed",
            format!("Invalid key pair ID `{bad}`; it should look like skey-xxxxxxxx."),
        ));
    }
    Ok(key_ids)
}

/// `UserData`: base64, at most 16 KB; shared with the actions that change or reinstall it.
pub(super) fn check_user_data(data: &str) -> ApiResult<()> {
    if data.len() > MAX_USER_DATA_BYTES {
        return Err(ApiError::new(
            "InvalidParameterValue.TooLarge",
            "`UserData` is larger than 16 KB.",
        ));
    }
    if base64::engine::general_purpose::STANDARD
        .decode(data)
        .is_err()
    {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidUserDataFormat",
            "Incorrect UserData format. Use the Base64-encoded format.",
        ));
    }
    Ok(())
}

/// 8–30 characters from at least two of lowercase, uppercase, digits and the symbol set.
pub(super) fn is_valid_linux_password(password: &str) -> bool {
    const SYMBOLS: &str = "()`~!@#$%^&*-+=|{}[]:;',.?/";
    let len = password.chars().count();
    if !(8..=30).contains(&len) {
        return false;
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SYMBOLS.contains(c))
    {
        return false;
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| SYMBOLS.contains(c)),
    ];
    classes.iter().filter(|x| **x).count() >= 2
}

fn tags(specs: Vec<TagSpecification>) -> ApiResult<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::new();
    for spec in specs {
        let resource_type = spec
            .resource_type
            .ok_or_else(|| ApiError::missing_parameter("TagSpecification.ResourceType"))?;
        one_of(
            "TagSpecification.ResourceType",
            &resource_type,
            TAG_RESOURCE_TYPES,
        )?;
        let mut seen: Vec<String> = Vec::new();
        for tag in spec.tags.unwrap_or_default() {
            let key = tag
                .key
                .ok_or_else(|| ApiError::missing_parameter("TagSpecification.Tags.Key"))?;
            let value = tag.value.unwrap_or_default();
            check_tag(&key, &value)?;
            if seen.contains(&key) {
                return Err(ApiError::new(
                    "InvalidParameterValue.DuplicateTags",
                    format!("Duplicate tags: the key `{key}` is given twice."),
                ));
            }
            seen.push(key.clone());
            if resource_type == "instance" {
                out.push(Tag { key, value });
            }
        }
    }
    if out.len() > 50 {
        return Err(ApiError::new(
            "InvalidParameterValue.TagQuotaLimitExceeded",
            "An instance can carry at most 50 tags.",
        ));
    }
    Ok(out)
}

pub(super) fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    let allowed = |c: char| c.is_alphanumeric() || " +-=._:/@()[]（）".contains(c);
    let lower = key.to_ascii_lowercase();
    if RESERVED_TAG_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(ApiError::new(
            "FailedOperation.TagKeyReserved",
            format!("The tag key `{key}` uses a reserved prefix."),
        ));
    }
    if key.is_empty() || key.chars().count() > 127 || !key.chars().all(allowed) {
        return Err(ApiError::new(
            "FailedOperation.IllegalTagKey",
            format!("The tag key `{key}` contains invalid characters or has an invalid length."),
        ));
    }
    if value.chars().count() > 255 || !value.chars().all(allowed) {
        return Err(ApiError::new(
            "FailedOperation.IllegalTagValue",
            format!(
                "The tag value `{value}` contains invalid characters or has an invalid length."
            ),
        ));
    }
    Ok(())
}

/// Quota, spot quota, capacity, subnet addresses and balance; returns how many to launch.
fn check_business_limits(ctx: &Ctx<'_>, state: &SimState, plan: &Plan) -> ApiResult<u32> {
    let account = state
        .accounts
        .get(ctx.owner)
        .ok_or_else(|| ApiError::internal("account vanished"))?;
    if account.instances + plan.count > account.instance_quota {
        return Err(ApiError::new(
            "LimitExceeded.InstanceQuota",
            format!(
                "You are short of the instance quota: {} in use, {} requested, quota {}.",
                account.instances, plan.count, account.instance_quota
            ),
        ));
    }
    if plan.charge.is_spot() && account.spot_instances + plan.count > account.spot_quota {
        return Err(ApiError::new(
            "LimitExceeded.SpotQuota",
            format!(
                "You are short of the spot instance quota: {} in use, {} requested, quota {}.",
                account.spot_instances, plan.count, account.spot_quota
            ),
        ));
    }
    let available = state.capacity.available(
        &plan.zone,
        &plan.instance_type,
        plan.charge.pool(),
        plan.count,
    );
    let count = match plan.min_count {
        Some(min) if available < min => {
            return Err(ApiError::new(
                "ResourceInsufficient.InsufficientOfferingMinimum",
                format!(
                    "Only {available} instances of {} are available in {}, fewer than MinCount {min}.",
                    plan.instance_type, plan.zone
                ),
            ));
        }
        Some(_) => available,
        None if available < plan.count => {
            return Err(if plan.charge.is_spot() {
                ApiError::new(
                    "InvalidParameterValue.InsufficientOffering",
                    format!(
                        "The spot instances of {} are out of stock in {}.",
                        plan.instance_type, plan.zone
                    ),
                )
            } else {
                ApiError::new(
                    "ResourceInsufficient.SpecifiedInstanceType",
                    format!(
                        "The specified instance type {} is insufficient in {}.",
                        plan.instance_type, plan.zone
                    ),
                )
            });
        }
        None => plan.count,
    };
    if state.private_ips.free(&plan.subnet_id) < count {
        return Err(ApiError::new(
            "FailedOperation.NoAvailableIpAddressCountInSubnet",
            format!(
                "The subnet `{}` has too few free IP addresses.",
                plan.subnet_id
            ),
        ));
    }
    let cost = f64::from(count) * upfront_cost(plan);
    if account.available_balance() < cost {
        return Err(ApiError::new(
            "InvalidAccount.InsufficientBalance",
            format!(
                "Insufficient account balance: {cost:.2} CNY is needed, {:.2} CNY is available.",
                account.available_balance()
            ),
        ));
    }
    Ok(count)
}

/// Per instance: one hour frozen (pay-as-you-go, spot) or the whole period paid (prepaid).
fn upfront_cost(plan: &Plan) -> f64 {
    match &plan.charge {
        ChargeType::Postpaid => plan.spec.hourly_price(),
        ChargeType::Spot { .. } => plan.spec.spot_hourly_price(),
        ChargeType::Prepaid { period, .. } => {
            plan.spec.hourly_price() * HOURS_PER_MONTH * f64::from(*period)
        }
    }
}

fn launch(ctx: &Ctx<'_>, state: &mut SimState, plan: &Plan, count: u32) -> Vec<String> {
    let per_instance = upfront_cost(plan);
    let (frozen, paid) = match plan.charge {
        ChargeType::Prepaid { .. } => (0.0, per_instance),
        _ => (per_instance, 0.0),
    };
    if let Some(account) = state.accounts.get_mut(ctx.owner) {
        account.balance -= paid * f64::from(count);
    }
    state
        .capacity
        .consume(&plan.zone, &plan.instance_type, plan.charge.pool(), count);
    let created = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let expired = match plan.charge {
        ChargeType::Prepaid { period, .. } => {
            let later = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(720 * i64::from(period)))
                .unwrap_or_else(|_| jiff::Timestamp::now());
            Some(later.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
        _ => None,
    };
    let mut ids = Vec::with_capacity(count as usize);
    for index in 0..count {
        let id = loop {
            let id = random_id("ins");
            if !state.store.contains(&id) {
                break id;
            }
        };
        let private_ip = match plan.private_ips.get(index as usize) {
            Some(ip) => {
                let addr = ip.parse().expect("checked in validation");
                state.private_ips.reserve(&plan.subnet_id, addr);
                addr
            }
            None => state
                .private_ips
                .allocate(&plan.subnet_id)
                .expect("free addresses checked before launch"),
        };
        let ip_text = private_ip.to_string();
        let host_name = match &plan.host_name {
            Some(template) => expand(template, index, count, Some(&ip_text)),
            None => format!("VM-{}-centos", ip_text.replace('.', "-")),
        };
        let launch_failure = state.launch_failures.pop_front();
        let instance = Instance {
            id: id.clone(),
            seq: state.store.next_seq(),
            owner: ctx.owner.to_string(),
            region: ctx.region.to_string(),
            zone: plan.zone.clone(),
            project_id: plan.project_id,
            instance_type: plan.instance_type.clone(),
            cpu: plan.spec.cpu,
            memory_gib: plan.spec.memory_gib,
            name: expand(&plan.name, index, count, None),
            host_name,
            charge: plan.charge.clone(),
            image_id: plan.image_id.clone(),
            system_disk: Disk {
                disk_type: plan.system_disk.0.clone(),
                disk_id: random_id("disk"),
                disk_size: plan.system_disk.1,
                delete_with_instance: None,
                encrypt: None,
            },
            data_disks: plan
                .data_disks
                .iter()
                .map(|(t, size, delete, encrypt)| Disk {
                    disk_type: t.clone(),
                    disk_id: random_id("disk"),
                    disk_size: *size,
                    delete_with_instance: Some(*delete),
                    encrypt: Some(*encrypt),
                })
                .collect(),
            vpc_id: plan.vpc_id.clone(),
            subnet_id: plan.subnet_id.clone(),
            private_ip,
            public_ip: None,
            wants_public_ip: plan.wants_public_ip,
            internet_charge_type: plan.internet_charge_type.clone(),
            internet_max_bandwidth_out: plan.bandwidth_out,
            security_group_ids: plan.security_group_ids.clone(),
            key_ids: plan.key_ids.clone(),
            tags: plan.tags.clone(),
            client_token: plan.client_token.clone(),
            state: InstanceState::Pending,
            latest_operation: Some("RunInstances".into()),
            latest_operation_state: Some("OPERATING".into()),
            latest_operation_request_id: Some(ctx.request_id.to_string()),
            latest_operation_error_msg: None,
            launch_failure,
            created_time: created.clone(),
            expired_time: expired.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            disable_api_termination: plan.disable_api_termination,
            cam_role_name: plan.cam_role_name.clone(),
            disaster_recover_group_ids: plan.disaster_recover_group_ids.clone(),
            hpc_cluster_id: plan.hpc_cluster_id.clone(),
            frozen,
            stopped_mode: None,
            operation: None,
            reimage_count: 0,
            user_data: plan.user_data.clone(),
        };
        state.launch(instance, ctx.now);
        ids.push(id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_length_and_two_classes() {
        assert!(is_valid_linux_password("Qcloud@TestApi123++"));
        assert!(is_valid_linux_password("abcdefg1"));
        assert!(!is_valid_linux_password("abcdefgh"));
        assert!(!is_valid_linux_password("Ab1"));
        assert!(!is_valid_linux_password("abcdefg1 "));
    }

    #[test]
    fn tag_keys_reject_reserved_prefixes_and_odd_characters() {
        assert!(check_tag("cvm-operator.io/uid", "0b9c-1").is_ok());
        assert_eq!(
            check_tag("qcloud:x", "v").unwrap_err().code,
            "FailedOperation.TagKeyReserved"
        );
        assert_eq!(
            check_tag("a<b", "v").unwrap_err().code,
            "FailedOperation.IllegalTagKey"
        );
        assert_eq!(
            check_tag("k", "v;").unwrap_err().code,
            "FailedOperation.IllegalTagValue"
        );
    }
}
