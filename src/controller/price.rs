//! The hourly price a CvmInstance shows (`status.hourlyPrice`, the `Price/h` column) and
//! adds to the `hourly_spend` metric.
//!
//! The price is the one DescribeZoneInstanceConfigInfos quotes for the instance's zone, type
//! and charge type (`UnitPriceDiscount`: CPU and memory; disks and bandwidth are billed
//! apart). It comes from the offering cache shared by every instance and set of a (credentials,
//! region), so showing it costs at most one call per charge type per cache period, however
//! many instances there are. It is shown only while the instance is billed for it.

use std::sync::Arc;

use tencent_cloud::types::Instance;

use crate::api::{BillingMode, CvmInstanceSpec};
use crate::cloud::{Cloud, OfferingCache};

/// States in which Tencent bills CPU and memory by the hour. STOPPED is billed too unless
/// the instance was stopped with STOP_CHARGING; PENDING counts from creation. LAUNCH_FAILED,
/// SHUTDOWN (isolated) and TERMINATING are not.
const BILLED_STATES: &[&str] = &["PENDING", "RUNNING", "STARTING", "STOPPING", "REBOOTING"];

/// The billing mode whose price applies to `instance` now, or `None` while it is not billed
/// by the hour. The charge type the cloud reports wins over the spec (an adopted instance
/// is billed as it was bought).
pub fn billed_mode(instance: &Instance, spec: &CvmInstanceSpec) -> Option<BillingMode> {
    let state = instance.instance_state.as_str();
    let stopped_billed =
        state == "STOPPED" && instance.stop_charging_mode.as_deref() != Some("STOP_CHARGING");
    if !BILLED_STATES.contains(&state) && !stopped_billed {
        return None;
    }
    match instance.instance_charge_type.as_deref() {
        Some(charge_type) => BillingMode::of_charge_type(charge_type),
        None => Some(spec.billing.mode),
    }
}

/// `0.0360`: four decimals, as Tencent quotes hourly prices.
pub fn format_price(price: f64) -> String {
    format!("{price:.4}")
}

/// What `status.hourlyPrice` should become for `instance`: `Some(None)` when it is not billed
/// or its offering has no price, `Some(Some(price))` when known, and `None` to leave the field
/// as it is because prices cannot be had right now (the cache logs why).
pub async fn hourly_price(
    offerings: &OfferingCache,
    cloud: &Arc<dyn Cloud>,
    spec: &CvmInstanceSpec,
    instance: &Instance,
) -> Option<Option<String>> {
    let Some(mode) = billed_mode(instance, spec) else {
        return Some(None);
    };
    let zone = instance
        .placement
        .as_ref()
        .map_or(spec.zone.as_str(), |p| p.zone.as_str());
    let instance_type = instance
        .instance_type
        .as_deref()
        .unwrap_or(&spec.instance_type);
    let sold = offerings.quietly(cloud, mode.charge_type()).await?;
    Some(
        sold.iter()
            .find(|o| o.zone == zone && o.instance_type == instance_type)
            .and_then(|o| o.hourly_price)
            .map(format_price),
    )
}

/// The price as a number, for the spend metric; `None` for no price or one that does not parse.
pub fn parse_price(text: Option<&str>) -> Option<f64> {
    text?.parse().ok().filter(|p: &f64| p.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: &str, charge: Option<&str>, stop_mode: Option<&str>) -> Instance {
        Instance {
            instance_state: state.into(),
            instance_charge_type: charge.map(Into::into),
            stop_charging_mode: stop_mode.map(Into::into),
            ..Instance::default()
        }
    }

    fn spec(mode: BillingMode) -> CvmInstanceSpec {
        let mut spec: CvmInstanceSpec = serde_json::from_value(serde_json::json!({
            "region": "ap-guangzhou", "zone": "ap-guangzhou-3", "instanceType": "S5.MEDIUM2",
            "imageId": "img-eb30mz89", "billing": {"mode": "PayAsYouGo"}
        }))
        .unwrap();
        spec.billing.mode = mode;
        spec
    }

    #[test]
    fn billed_while_it_runs_or_is_stopped_keeping_charges() {
        let paygo = spec(BillingMode::PayAsYouGo);
        for state in ["PENDING", "RUNNING", "STARTING", "STOPPING", "REBOOTING"] {
            let i = instance(state, Some("POSTPAID_BY_HOUR"), None);
            assert_eq!(
                billed_mode(&i, &paygo),
                Some(BillingMode::PayAsYouGo),
                "{state}"
            );
        }
        let kept = instance("STOPPED", Some("POSTPAID_BY_HOUR"), Some("KEEP_CHARGING"));
        assert_eq!(billed_mode(&kept, &paygo), Some(BillingMode::PayAsYouGo));
        let released = instance("STOPPED", Some("POSTPAID_BY_HOUR"), Some("STOP_CHARGING"));
        assert_eq!(billed_mode(&released, &paygo), None);
        for state in ["LAUNCH_FAILED", "SHUTDOWN", "TERMINATING"] {
            assert_eq!(
                billed_mode(&instance(state, None, None), &paygo),
                None,
                "{state}"
            );
        }
    }

    #[test]
    fn the_cloud_charge_type_wins_and_prepaid_has_no_hourly_price() {
        let paygo = spec(BillingMode::PayAsYouGo);
        let spot = instance("RUNNING", Some("SPOTPAID"), None);
        assert_eq!(billed_mode(&spot, &paygo), Some(BillingMode::Spot));
        let unknown = instance("RUNNING", None, None);
        assert_eq!(
            billed_mode(&unknown, &spec(BillingMode::Spot)),
            Some(BillingMode::Spot)
        );
        let prepaid = instance("RUNNING", Some("PREPAID"), None);
        assert_eq!(billed_mode(&prepaid, &paygo), None);
    }

    #[test]
    fn prices_read_as_tencent_quotes_them() {
        assert_eq!(format_price(0.036), "0.0360");
        assert_eq!(format_price(0.18000000000000002), "0.1800");
        assert_eq!(parse_price(Some("0.0360")), Some(0.036));
        assert_eq!(parse_price(Some("n/a")), None);
        assert_eq!(parse_price(None), None);
    }
}
