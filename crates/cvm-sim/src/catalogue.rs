//! The regions and availability zones the simulator knows, answered by DescribeRegions and
//! DescribeZones and enforced on every request (`X-TC-Region`) and on RunInstances
//! (`Placement.Zone`).
//!
//! The built-in catalogue is Tencent Cloud's public CVM zone list as the official Python SDK
//! documents it: `ZoneInfo.Zone` in `tencentcloud/cvm/v20170312/models.py` of
//! `tencentcloud-sdk-python-cvm` 3.1.178 ("全网可用区名称如下"), zones marked 售罄 (sold out)
//! there are `UNAVAILABLE`. From the DescribeRegions and DescribeZones examples of `tccli`
//! 3.1.189.1 (`tccli/services/cvm/v20170312/examples.json`): the Chinese names of ap-beijing,
//! ap-guangzhou, ap-hongkong, ap-shanghai, ap-shanghai-fsi, ap-shenzhen-fsi, ap-singapore and
//! na-siliconvalley, the zone name formats (`广州三区`, `Guangzhou Zone 3`) and the Guangzhou
//! zone IDs (`100003`, `100004`). The other regions' names follow the same format (English
//! as on the international "Regions and Availability Zones" page, e.g. `South China
//! (Guangzhou)`); the other zone IDs follow the same numbering (a region number, then the
//! zone number in three digits) with region numbers that no public document lists, so tests
//! must not rely on them. A config file can replace the whole catalogue (`regions`, see
//! docs/cvm-sim.md).

use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};

pub const AVAILABLE: &str = "AVAILABLE";
pub const UNAVAILABLE: &str = "UNAVAILABLE";

/// One region as the config file spells it (camelCase); names default to the region code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionSpec {
    pub region: String,
    /// Chinese name, e.g. `华南地区(广州)`; answered unless the request asks for `en-US`.
    #[serde(default)]
    pub region_name: Option<String>,
    /// English name, e.g. `South China (Guangzhou)`; defaults to `regionName`.
    #[serde(default)]
    pub region_name_en: Option<String>,
    #[serde(default = "available")]
    pub region_state: String,
    pub zones: Vec<ZoneSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    pub zone: String,
    #[serde(default)]
    pub zone_name: Option<String>,
    #[serde(default)]
    pub zone_name_en: Option<String>,
    #[serde(default)]
    pub zone_id: Option<String>,
    /// `UNAVAILABLE` zones are listed but RunInstances there is sold out.
    #[serde(default = "available")]
    pub zone_state: String,
}

fn available() -> String {
    AVAILABLE.to_string()
}

/// The language of names in answers, from `X-TC-Language` (`zh-CN`, the API's default, or
/// `en-US`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Chinese,
    English,
}

impl Language {
    pub fn from_header(value: Option<&str>) -> Self {
        match value {
            Some("en-US") => Language::English,
            _ => Language::Chinese,
        }
    }
}

/// One `RegionSet` entry of DescribeRegions (`RegionInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegionInfo<'a> {
    pub region: &'a str,
    pub region_name: &'a str,
    pub region_state: &'a str,
}

/// One `ZoneSet` entry of DescribeZones (`ZoneInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneInfo<'a> {
    pub zone: &'a str,
    pub zone_name: &'a str,
    pub zone_id: &'a str,
    pub zone_state: &'a str,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    regions: Vec<RegionSpec>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Self {
            regions: public_regions(),
        }
    }
}

impl Catalogue {
    /// A catalogue from config entries, checked by [`validate`].
    pub fn from_specs(regions: Vec<RegionSpec>) -> Self {
        Self { regions }
    }

    fn find(&self, region: &str) -> Option<&RegionSpec> {
        self.regions.iter().find(|r| r.region == region)
    }

    /// Every request names its region; one the API does not serve is refused before
    /// anything else is looked at. `UnsupportedRegion` is the common error code for it
    /// ("接口不支持所传地域"); `InvalidRegion.NotFound` is for regions given as parameters
    /// (image sync), not for `X-TC-Region`.
    pub fn check_region(&self, region: &str) -> ApiResult<()> {
        match self.find(region) {
            Some(_) => Ok(()),
            None => Err(ApiError::new(
                "UnsupportedRegion",
                format!("The action does not support the region `{region}`."),
            )),
        }
    }

    /// RunInstances' `Placement.Zone`: a zone not in the request's region (unknown, or of
    /// another region) is `InvalidZone.MismatchRegion` ("The specified `zone` does not
    /// exist"); a sold-out zone is `ResourceInsufficient.AvailabilityZoneSoldOut`.
    pub fn check_launch_zone(&self, region: &str, zone: &str) -> ApiResult<()> {
        let found = self
            .find(region)
            .and_then(|r| r.zones.iter().find(|z| z.zone == zone));
        match found {
            None => Err(ApiError::new(
                "InvalidZone.MismatchRegion",
                format!("The specified zone `{zone}` does not exist in region `{region}`."),
            )),
            Some(z) if z.zone_state != AVAILABLE => Err(ApiError::new(
                "ResourceInsufficient.AvailabilityZoneSoldOut",
                format!("The availability zone `{zone}` has been sold out."),
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn regions(&self, language: Language) -> Vec<RegionInfo<'_>> {
        self.regions
            .iter()
            .map(|r| RegionInfo {
                region: &r.region,
                region_name: localized(&r.region, &r.region_name, &r.region_name_en, language),
                region_state: &r.region_state,
            })
            .collect()
    }

    /// The zones of a region (empty for a region not in the catalogue).
    pub fn zones(&self, region: &str, language: Language) -> Vec<ZoneInfo<'_>> {
        self.find(region)
            .map(|r| {
                r.zones
                    .iter()
                    .map(|z| ZoneInfo {
                        zone: &z.zone,
                        zone_name: localized(&z.zone, &z.zone_name, &z.zone_name_en, language),
                        zone_id: z.zone_id.as_deref().unwrap_or_default(),
                        zone_state: &z.zone_state,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn localized<'a>(
    code: &'a str,
    chinese: &'a Option<String>,
    english: &'a Option<String>,
    language: Language,
) -> &'a str {
    let english = english.as_deref().or(chinese.as_deref());
    let chinese = chinese.as_deref().or(english);
    match language {
        Language::Chinese => chinese,
        Language::English => english,
    }
    .unwrap_or(code)
}

/// Checks config entries: well-formed unique region codes, zones named `<region>-<n>` and
/// unique, states `AVAILABLE` or `UNAVAILABLE`.
pub fn validate(regions: &[RegionSpec]) -> Result<(), String> {
    if regions.is_empty() {
        return Err("regions must list at least one region".into());
    }
    let mut seen = std::collections::HashSet::new();
    for region in regions {
        if !is_region_code(&region.region) {
            return Err(format!(
                "region `{}` is not a region code like ap-guangzhou",
                region.region
            ));
        }
        if !seen.insert(region.region.as_str()) {
            return Err(format!("region `{}` is listed twice", region.region));
        }
        check_state(&region.region, &region.region_state)?;
        for zone in &region.zones {
            let number = zone
                .zone
                .strip_prefix(region.region.as_str())
                .and_then(|rest| rest.strip_prefix('-'));
            if !number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
                return Err(format!(
                    "zone `{}` is not `{}-<number>`",
                    zone.zone, region.region
                ));
            }
            if !seen.insert(zone.zone.as_str()) {
                return Err(format!("zone `{}` is listed twice", zone.zone));
            }
            check_state(&zone.zone, &zone.zone_state)?;
        }
    }
    Ok(())
}

fn check_state(what: &str, state: &str) -> Result<(), String> {
    if state == AVAILABLE || state == UNAVAILABLE {
        Ok(())
    } else {
        Err(format!(
            "{what}: state must be AVAILABLE or UNAVAILABLE, got `{state}`"
        ))
    }
}

/// `ap-guangzhou`, `na-siliconvalley`, `ap-shanghai-fsi`: lowercase words joined by hyphens.
fn is_region_code(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// One row of the built-in table: region code, Chinese and English region names, Chinese
/// and English city names (zone names are `<city><n>区` and `<City> Zone <n>`), the region
/// number of its zone IDs, and its zones as (number, sold out).
type PublicRegion = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static [(u32, bool)],
);

#[rustfmt::skip]
const PUBLIC_REGIONS: &[PublicRegion] = &[
    ("ap-guangzhou", "华南地区(广州)", "South China (Guangzhou)", "广州", "Guangzhou", 100,
        &[(1, true), (2, true), (3, false), (4, false), (6, false), (7, false)]),
    ("ap-shanghai", "华东地区(上海)", "East China (Shanghai)", "上海", "Shanghai", 200,
        &[(2, false), (3, false), (4, false), (5, false), (8, false)]),
    ("ap-nanjing", "华东地区(南京)", "East China (Nanjing)", "南京", "Nanjing", 330,
        &[(1, false), (2, false), (3, false)]),
    ("ap-beijing", "华北地区(北京)", "North China (Beijing)", "北京", "Beijing", 800,
        &[(1, true), (3, false), (4, false), (5, false), (6, false), (7, false)]),
    ("ap-chengdu", "西南地区(成都)", "Southwest China (Chengdu)", "成都", "Chengdu", 160,
        &[(1, false), (2, false)]),
    ("ap-chongqing", "西南地区(重庆)", "Southwest China (Chongqing)", "重庆", "Chongqing", 190,
        &[(1, false)]),
    ("ap-hongkong", "港澳台地区(中国香港)", "Hong Kong, Macau and Taiwan (China) (Hong Kong, China)", "香港", "Hong Kong", 300,
        &[(1, true), (2, false), (3, false)]),
    ("ap-shanghai-fsi", "华东地区(上海金融)", "East China (Shanghai Finance)", "上海金融", "Shanghai Finance", 700,
        &[(2, false), (3, false), (4, false)]),
    ("ap-shenzhen-fsi", "华南地区(深圳金融)", "South China (Shenzhen Finance)", "深圳金融", "Shenzhen Finance", 110,
        &[(1, false), (2, false), (3, true)]),
    ("ap-singapore", "亚太东南(新加坡)", "Southeast Asia (Singapore)", "新加坡", "Singapore", 900,
        &[(1, false), (2, false), (3, false), (4, false)]),
    ("ap-bangkok", "亚太东南(曼谷)", "Southeast Asia (Bangkok)", "曼谷", "Bangkok", 230,
        &[(1, false), (2, false)]),
    ("ap-jakarta", "亚太东南(雅加达)", "Southeast Asia (Jakarta)", "雅加达", "Jakarta", 360,
        &[(1, false), (2, false)]),
    ("ap-seoul", "亚太东北(首尔)", "Northeast Asia (Seoul)", "首尔", "Seoul", 180,
        &[(1, false), (2, false)]),
    ("ap-tokyo", "亚太东北(东京)", "Northeast Asia (Tokyo)", "东京", "Tokyo", 250,
        &[(1, false), (2, false)]),
    ("ap-mumbai", "亚太南部(孟买)", "South Asia (Mumbai)", "孟买", "Mumbai", 210,
        &[(1, false), (2, false)]),
    ("na-siliconvalley", "美国西部(硅谷)", "West US (Silicon Valley)", "硅谷", "Silicon Valley", 150,
        &[(1, false), (2, false)]),
    ("na-ashburn", "美国东部(弗吉尼亚)", "East US (Virginia)", "弗吉尼亚", "Virginia", 220,
        &[(1, false), (2, false)]),
    ("eu-frankfurt", "欧洲地区(法兰克福)", "Europe (Frankfurt)", "法兰克福", "Frankfurt", 170,
        &[(1, false), (2, false)]),
    ("sa-saopaulo", "南美地区(圣保罗)", "South America (São Paulo)", "圣保罗", "Sao Paulo", 340,
        &[(1, false)]),
];

const CHINESE_DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

fn public_regions() -> Vec<RegionSpec> {
    PUBLIC_REGIONS
        .iter()
        .map(
            |&(region, name_zh, name_en, city_zh, city_en, number, zones)| RegionSpec {
                region: region.to_string(),
                region_name: Some(name_zh.to_string()),
                region_name_en: Some(name_en.to_string()),
                region_state: available(),
                zones: zones
                    .iter()
                    .map(|&(n, sold_out)| ZoneSpec {
                        zone: format!("{region}-{n}"),
                        zone_name: Some(format!("{city_zh}{}区", CHINESE_DIGITS[n as usize])),
                        zone_name_en: Some(format!("{city_en} Zone {n}")),
                        zone_id: Some(format!("{number}{n:03}")),
                        zone_state: if sold_out { UNAVAILABLE } else { AVAILABLE }.to_string(),
                    })
                    .collect(),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalogue_is_valid_and_has_the_sdk_zone_list() {
        let regions = public_regions();
        validate(&regions).unwrap();
        assert_eq!(regions.len(), 19);
        // The SDK's ZoneInfo docstring lists 53 zones.
        assert_eq!(regions.iter().map(|r| r.zones.len()).sum::<usize>(), 53);
    }

    #[test]
    fn zones_match_the_tccli_example() {
        let catalogue = Catalogue::default();
        let zones = catalogue.zones("ap-guangzhou", Language::Chinese);
        let three = zones.iter().find(|z| z.zone == "ap-guangzhou-3").unwrap();
        assert_eq!(
            (three.zone_name, three.zone_id, three.zone_state),
            ("广州三区", "100003", AVAILABLE)
        );
        let english = catalogue.zones("ap-guangzhou", Language::English);
        assert_eq!(english[3].zone, "ap-guangzhou-4");
        assert_eq!(english[3].zone_name, "Guangzhou Zone 4");
        let sold_out = zones.iter().find(|z| z.zone == "ap-guangzhou-1").unwrap();
        assert_eq!(sold_out.zone_state, UNAVAILABLE);
        let regions = catalogue.regions(Language::Chinese);
        let guangzhou = regions.iter().find(|r| r.region == "ap-guangzhou").unwrap();
        assert_eq!(guangzhou.region_name, "华南地区(广州)");
    }

    #[test]
    fn region_names_match_the_tccli_describe_regions_example() {
        let catalogue = Catalogue::default();
        let regions = catalogue.regions(Language::Chinese);
        for (region, name) in [
            ("ap-beijing", "华北地区(北京)"),
            ("ap-guangzhou", "华南地区(广州)"),
            ("ap-hongkong", "港澳台地区(中国香港)"),
            ("ap-shanghai", "华东地区(上海)"),
            ("ap-shanghai-fsi", "华东地区(上海金融)"),
            ("ap-shenzhen-fsi", "华南地区(深圳金融)"),
            ("ap-singapore", "亚太东南(新加坡)"),
            ("na-siliconvalley", "美国西部(硅谷)"),
        ] {
            let found = regions.iter().find(|r| r.region == region).unwrap();
            assert_eq!(found.region_name, name);
            assert_eq!(found.region_state, AVAILABLE);
        }
    }

    #[test]
    fn regions_and_zones_are_checked() {
        let catalogue = Catalogue::default();
        catalogue.check_region("ap-guangzhou").unwrap();
        assert_eq!(
            catalogue.check_region("xx-nowhere").unwrap_err().code,
            "UnsupportedRegion"
        );
        catalogue
            .check_launch_zone("ap-guangzhou", "ap-guangzhou-3")
            .unwrap();
        for (region, zone) in [
            ("ap-guangzhou", "ap-guangzhou-5"),
            ("ap-guangzhou", "ap-shanghai-2"),
            ("ap-shanghai", "ap-shanghai-fsi-2"),
        ] {
            assert_eq!(
                catalogue.check_launch_zone(region, zone).unwrap_err().code,
                "InvalidZone.MismatchRegion",
                "{zone} in {region}"
            );
        }
        assert_eq!(
            catalogue
                .check_launch_zone("ap-guangzhou", "ap-guangzhou-1")
                .unwrap_err()
                .code,
            "ResourceInsufficient.AvailabilityZoneSoldOut"
        );
    }

    #[test]
    fn config_entries_default_their_names_and_are_validated() {
        let specs: Vec<RegionSpec> = serde_json::from_str(
            r#"[{"region": "xx-test", "zones": [{"zone": "xx-test-1"}, {"zone": "xx-test-2", "zoneState": "UNAVAILABLE"}]}]"#,
        )
        .unwrap();
        validate(&specs).unwrap();
        let catalogue = Catalogue::from_specs(specs.clone());
        assert_eq!(
            catalogue.regions(Language::English)[0].region_name,
            "xx-test"
        );
        assert_eq!(
            catalogue.zones("xx-test", Language::Chinese)[1].zone_state,
            UNAVAILABLE
        );

        let mut bad = specs.clone();
        bad[0].zones[0].zone = "yy-test-1".into();
        assert!(validate(&bad).unwrap_err().contains("yy-test-1"));
        let mut bad = specs.clone();
        bad[0].region_state = "OPEN".into();
        assert!(validate(&bad).is_err());
        let mut bad = specs.clone();
        bad.push(specs[0].clone());
        assert!(validate(&bad).unwrap_err().contains("twice"));
        assert!(validate(&[]).is_err());
        for code in ["guangzhou", "ap-guangzhou-3", "AP-x"] {
            assert!(!is_region_code(code), "{code}");
        }
    }
}
