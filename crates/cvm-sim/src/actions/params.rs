//! Request parsing shared by the actions: unknown parameters, typed bodies, id formats.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Rejects top-level parameters the action does not define, as the real API does.
pub fn reject_unknown(params: &Value, known: &[&str]) -> ApiResult<()> {
    if let Value::Object(map) = params {
        if let Some(name) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::new(
                "UnknownParameter",
                format!("The parameter `{name}` is not recognized."),
            ));
        }
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            "The request body must be a JSON object.",
        ))
    }
}

/// One `Filters` entry of the describe actions.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// At most 10 filters per request, each with at most `max_values` values (5 for
/// DescribeInstances, 100 for DescribeZoneInstanceConfigInfos).
pub fn check_filters(filters: &[Filter], max_values: usize) -> ApiResult<()> {
    const MAX_FILTERS: usize = 10;
    if filters.len() > MAX_FILTERS {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!(
                "At most {MAX_FILTERS} filters are allowed, {} were given.",
                filters.len()
            ),
        ));
    }
    match filters.iter().find(|f| f.values.len() > max_values) {
        Some(filter) => Err(ApiError::new(
            "InvalidFilterValue.LimitExceeded",
            format!(
                "The filter `{}` has {} values; at most {max_values} are allowed.",
                filter.name,
                filter.values.len()
            ),
        )),
        None => Ok(()),
    }
}

/// `reject_unknown`, then `parse`: the start of most actions.
pub fn parse_known<T: DeserializeOwned>(params: Value, known: &[&str]) -> ApiResult<T> {
    reject_unknown(&params, known)?;
    parse(params)
}

pub fn parse<T: DeserializeOwned>(params: Value) -> ApiResult<T> {
    serde_json::from_value(params).map_err(|e| {
        ApiError::invalid_parameter(format!("A parameter has the wrong type or shape: {e}."))
    })
}

/// `<prefix>-` followed by exactly 8 lowercase letters or digits, e.g. `ins-1a2b3c4d`.
pub fn is_resource_id(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| {
            rest.len() == 8
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

pub fn random_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}-{suffix}")
}

/// Checks a list of instance ids: at most 100, each well formed; duplicates are dropped.
pub fn instance_ids(ids: &[String]) -> ApiResult<Vec<&str>> {
    if ids.len() > 100 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!(
                "`InstanceIds` accepts at most 100 ids per request, {} were given.",
                ids.len()
            ),
        ));
    }
    let mut unique: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !is_resource_id(id, "ins") {
            return Err(ApiError::instance_id_malformed(id));
        }
        if !unique.contains(&id.as_str()) {
            unique.push(id);
        }
    }
    Ok(unique)
}

/// A parameter the action cannot do without: `MissingParameter` naming it when absent.
pub fn required<T>(value: Option<T>, name: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::missing_parameter(name))
}

/// Offset and Limit of the paginated describe calls: Limit defaults to 20, at most 100.
pub fn page(offset: Option<i64>, limit: Option<i64>) -> ApiResult<(usize, usize)> {
    let offset = offset.unwrap_or(0);
    let limit = limit.unwrap_or(20);
    if offset < 0 {
        return Err(ApiError::invalid_value(format!(
            "`Offset` must be >= 0, got {offset}."
        )));
    }
    if !(0..=100).contains(&limit) {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("`Limit` must be between 0 and 100, got {limit}."),
        ));
    }
    Ok((offset as usize, limit as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_need_prefix_and_eight_lowercase_alphanumerics() {
        assert!(is_resource_id("ins-1a2b3c4d", "ins"));
        assert!(!is_resource_id("ins-1122", "ins"));
        assert!(!is_resource_id("ins-1A2B3C4D", "ins"));
        assert!(!is_resource_id("img-1a2b3c4d", "ins"));
        assert!(is_resource_id(&random_id("ins"), "ins"));
    }

    #[test]
    fn id_lists_are_limited_checked_and_deduplicated() {
        let ids = vec!["ins-aaaaaaaa".to_string(), "ins-aaaaaaaa".to_string()];
        assert_eq!(instance_ids(&ids).unwrap(), vec!["ins-aaaaaaaa"]);
        let bad = vec!["ins-1".to_string()];
        assert_eq!(
            instance_ids(&bad).unwrap_err().code,
            "InvalidInstanceId.Malformed"
        );
        let many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
        assert_eq!(
            instance_ids(&many).unwrap_err().code,
            "InvalidParameterValue.LimitExceeded"
        );
    }

    #[test]
    fn paging_defaults_and_limits() {
        assert_eq!(page(None, None).unwrap(), (0, 20));
        assert_eq!(page(Some(5), Some(100)).unwrap(), (5, 100));
        assert!(page(None, Some(101)).is_err());
        assert!(page(Some(-1), None).is_err());
    }

    #[test]
    fn unknown_parameters_are_named() {
        let err =
            reject_unknown(&serde_json::json!({"Limit": 1, "Foo": 2}), &["Limit"]).unwrap_err();
        assert_eq!(err.code, "UnknownParameter");
        assert!(err.message.contains("Foo"));
    }
}
