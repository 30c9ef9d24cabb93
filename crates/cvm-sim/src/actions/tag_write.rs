//! The Tag service's writes: ModifyResourceTags (one resource), TagResources and
//! UnTagResources (up to 10 resources). Resources are named in six parts,
//! `qcs::cvm:<region>:uin/<uin>:instance/<id>`, where an empty uin means the caller's
//! account. Changes show at once in DescribeInstances' `Tags` and its tag filters.

use serde::Deserialize;
use serde_json::Value;

use super::params::{parse, reject_unknown, required};
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::Tag;

const MAX_RESOURCES: usize = 10;
const MAX_TAGS_PER_CALL: usize = 10;
/// Tags one resource may carry.
const MAX_TAGS_PER_RESOURCE: usize = 50;
const RESERVED_PREFIXES: &[&str] = &["qcloud:", "tencent:", "project"];
const MAX_KEY_CHARS: usize = 255;
const MAX_VALUE_CHARS: usize = 127;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagPair {
    tag_key: Option<String>,
    tag_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyOnly {
    tag_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Modify {
    resource: Option<String>,
    #[serde(default)]
    replace_tags: Vec<TagPair>,
    #[serde(default)]
    delete_tags: Vec<KeyOnly>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourcesRequest {
    #[serde(default)]
    resource_list: Vec<String>,
    #[serde(default)]
    tags: Vec<TagPair>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnTagResourcesRequest {
    #[serde(default)]
    resource_list: Vec<String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

pub fn modify_resource_tags(
    ctx: &Ctx<'_>,
    state: &mut SimState,
    params: Value,
) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, &["Resource", "ReplaceTags", "DeleteTags"])?;
    let request: Modify = parse(params)?;
    let resource = required(request.resource, "Resource")?;
    if request.replace_tags.is_empty() && request.delete_tags.is_empty() {
        return Err(ApiError::new(
            "MissingParameter",
            "One of `ReplaceTags` and `DeleteTags` is required.",
        ));
    }
    let replace = checked_pairs(request.replace_tags)?;
    let delete: Vec<String> = request
        .delete_tags
        .into_iter()
        .map(|k| required(k.tag_key, "DeleteTags.TagKey"))
        .collect::<ApiResult<_>>()?;
    count_per_call(delete.len())?;
    if let Some(key) = delete.iter().find(|k| replace.iter().any(|t| &t.key == *k)) {
        return Err(ApiError::new(
            "InvalidParameterValue.DeleteTagsParamError",
            format!("The key `{key}` is both in `ReplaceTags` and `DeleteTags`."),
        ));
    }
    let id = instance_of(ctx, state, &resource)?;
    retag(state, &[id], &replace, &delete)?;
    to_json(&serde_json::Map::new())
}

pub fn tag_resources(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, &["ResourceList", "Tags"])?;
    let request: TagResourcesRequest = parse(params)?;
    if request.tags.is_empty() {
        return Err(ApiError::missing_parameter("Tags"));
    }
    let tags = checked_pairs(request.tags)?;
    let ids = instances_of(ctx, state, &request.resource_list)?;
    retag(state, &ids, &tags, &[])?;
    to_json(&serde_json::json!({ "FailedResources": [] }))
}

pub fn untag_resources(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    reject_unknown(&params, &["ResourceList", "TagKeys"])?;
    let request: UnTagResourcesRequest = parse(params)?;
    if request.tag_keys.is_empty() {
        return Err(ApiError::missing_parameter("TagKeys"));
    }
    count_per_call(request.tag_keys.len())?;
    let ids = instances_of(ctx, state, &request.resource_list)?;
    retag(state, &ids, &[], &request.tag_keys)?;
    to_json(&serde_json::json!({ "FailedResources": [] }))
}

/// Sets `replace` and removes `delete` on every instance, or on none when one would end
/// with too many tags.
fn retag(
    state: &mut SimState,
    ids: &[String],
    replace: &[Tag],
    delete: &[String],
) -> ApiResult<()> {
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let mut tags = state
            .store
            .get(id)
            .map(|i| i.tags.clone())
            .unwrap_or_default();
        tags.retain(|t| !delete.contains(&t.key));
        for tag in replace {
            match tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => tags.push(tag.clone()),
            }
        }
        if tags.len() > MAX_TAGS_PER_RESOURCE {
            return Err(ApiError::new(
                "LimitExceeded.ResourceAttachedTags",
                format!("The resource `{id}` would carry more than {MAX_TAGS_PER_RESOURCE} tags."),
            ));
        }
        results.push((id.clone(), tags));
    }
    for (id, tags) in results {
        state.store.set_tags(&id, tags);
    }
    Ok(())
}

fn count_per_call(count: usize) -> ApiResult<()> {
    if count > MAX_TAGS_PER_CALL {
        return Err(ApiError::new(
            "LimitExceeded.TagNumPerRequest",
            format!("At most {MAX_TAGS_PER_CALL} tags per request, {count} were given."),
        ));
    }
    Ok(())
}

fn checked_pairs(pairs: Vec<TagPair>) -> ApiResult<Vec<Tag>> {
    count_per_call(pairs.len())?;
    let mut tags: Vec<Tag> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let key = required(pair.tag_key, "TagKey")?;
        let value = required(pair.tag_value, "TagValue")?;
        check_key_and_value(&key, &value)?;
        if tags.iter().any(|t| t.key == key) {
            return Err(ApiError::new(
                "InvalidParameterValue.TagKeyDuplicate",
                format!("The tag key `{key}` is given twice."),
            ));
        }
        tags.push(Tag { key, value });
    }
    Ok(tags)
}

fn check_key_and_value(key: &str, value: &str) -> ApiResult<()> {
    let allowed = |c: char| c.is_alphanumeric() || " +-=._:/@".contains(c);
    if key.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterValue.TagKeyEmpty",
            "A tag key cannot be empty.",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(ApiError::new(
            "InvalidParameter.ReservedTagKey",
            format!("The tag key `{key}` uses a reserved prefix (qcloud:, tencent:, project)."),
        ));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(ApiError::new(
            "InvalidParameterValue.TagKeyLengthExceeded",
            format!("The tag key `{key}` is longer than {MAX_KEY_CHARS} characters."),
        ));
    }
    if !key.chars().all(allowed) {
        return Err(ApiError::new(
            "InvalidParameterValue.TagKeyCharacterIllegal",
            format!("The tag key `{key}` contains characters that are not allowed."),
        ));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::new(
            "InvalidParameterValue.TagValueLengthExceeded",
            format!("The value of `{key}` is longer than {MAX_VALUE_CHARS} characters."),
        ));
    }
    if !value.chars().all(allowed) {
        return Err(ApiError::new(
            "InvalidParameterValue.TagValueCharacterIllegal",
            format!("The value of `{key}` contains characters that are not allowed."),
        ));
    }
    Ok(())
}

fn instances_of(ctx: &Ctx<'_>, state: &SimState, resources: &[String]) -> ApiResult<Vec<String>> {
    if resources.is_empty() {
        return Err(ApiError::missing_parameter("ResourceList"));
    }
    if resources.len() > MAX_RESOURCES {
        return Err(ApiError::new(
            "LimitExceeded.ResourceNumPerRequest",
            format!(
                "At most {MAX_RESOURCES} resources per request, {} were given.",
                resources.len()
            ),
        ));
    }
    resources
        .iter()
        .map(|r| instance_of(ctx, state, r))
        .collect()
}

/// The caller's instance a six-part resource name points at.
fn instance_of(ctx: &Ctx<'_>, state: &SimState, resource: &str) -> ApiResult<String> {
    let name = ResourceName::parse(resource)?;
    if name.service != "cvm" || name.prefix != "instance" {
        return Err(description_error(
            resource,
            "cvm-sim only keeps tags of CVM instances (`cvm` and `instance`)",
        ));
    }
    state
        .store
        .get_owned(ctx.owner, name.id)
        .filter(|i| i.region == name.region)
        .map(|i| i.id.clone())
        .ok_or_else(|| description_error(resource, "no such instance in this account and region"))
}

/// `qcs::<service>:<region>:uin/<uin>:<prefix>/<id>`.
struct ResourceName<'a> {
    service: &'a str,
    region: &'a str,
    prefix: &'a str,
    id: &'a str,
}

impl<'a> ResourceName<'a> {
    fn parse(resource: &'a str) -> ApiResult<Self> {
        let parts: Vec<&str> = resource.split(':').collect();
        let [qcs, empty, service, region, uin, path] = parts[..] else {
            return Err(description_error(
                resource,
                "it must have six `:`-separated parts",
            ));
        };
        if qcs != "qcs" || !empty.is_empty() || service.is_empty() || region.is_empty() {
            return Err(description_error(
                resource,
                "it must start with `qcs::<service>:<region>:`",
            ));
        }
        let account = uin
            .strip_prefix("uin/")
            .ok_or_else(|| description_error(resource, "the fifth part must be `uin/<account>`"))?;
        if !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::new(
                "InvalidParameterValue.UinInvalid",
                format!("The uin `{account}` in `{resource}` is not an account ID."),
            ));
        }
        let (prefix, id) = path
            .split_once('/')
            .filter(|(p, id)| !p.is_empty() && !id.is_empty())
            .ok_or_else(|| description_error(resource, "the last part must be `<prefix>/<id>`"))?;
        Ok(Self {
            service,
            region,
            prefix,
            id,
        })
    }
}

fn description_error(resource: &str, why: &str) -> ApiError {
    ApiError::new(
        "InvalidParameterValue.ResourceDescriptionError",
        format!("The resource description `{resource}` is not valid: {why}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_part_names_with_or_without_uin() {
        let name = ResourceName::parse("qcs::cvm:ap-guangzhou:uin/:instance/ins-12345678").unwrap();
        assert_eq!(
            (name.service, name.region, name.prefix, name.id),
            ("cvm", "ap-guangzhou", "instance", "ins-12345678")
        );
        assert!(ResourceName::parse("qcs::cvm:ap-guangzhou:uin/100000:instance/ins-1").is_ok());
        for bad in [
            "ins-12345678",
            "qcs::cvm:ap-guangzhou:instance/ins-1",
            "qcs:x:cvm:ap-guangzhou:uin/:instance/ins-1",
            "qcs::cvm:ap-guangzhou:100:instance/ins-1",
            "qcs::cvm:ap-guangzhou:uin/:instance",
        ] {
            assert_eq!(
                ResourceName::parse(bad).err().unwrap().code,
                "InvalidParameterValue.ResourceDescriptionError",
                "{bad}"
            );
        }
        assert_eq!(
            ResourceName::parse("qcs::cvm:ap-guangzhou:uin/abc:instance/ins-1")
                .err()
                .unwrap()
                .code,
            "InvalidParameterValue.UinInvalid"
        );
    }

    #[test]
    fn reserved_prefixes_and_limits() {
        assert_eq!(
            check_key_and_value("qcloud:x", "v").unwrap_err().code,
            "InvalidParameter.ReservedTagKey"
        );
        assert_eq!(
            check_key_and_value("", "v").unwrap_err().code,
            "InvalidParameterValue.TagKeyEmpty"
        );
        assert!(check_key_and_value("cvm-operator.io/owner", "ns/name").is_ok());
        assert_eq!(
            count_per_call(11).unwrap_err().code,
            "LimitExceeded.TagNumPerRequest"
        );
    }
}
