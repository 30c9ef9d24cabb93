//! Tencent Cloud API errors as the simulator returns them: a code and a message,
//! always inside an HTTP 200 envelope.

use std::fmt;

/// One API error. `code` is the Tencent error code verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{name}`."),
        )
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameter", message)
    }

    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }

    pub fn invalid_combination(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterCombination", message)
    }

    pub fn range(name: &str, detail: impl fmt::Display) -> Self {
        Self::new(
            "InvalidParameterValue.Range",
            format!("Invalid parameter value: `{name}` {detail}."),
        )
    }

    pub fn request_limit_exceeded() -> Self {
        Self::new(
            "RequestLimitExceeded",
            "Your current request times exceeds the limit, please try again later.",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalError", message)
    }

    pub fn instance_id_malformed(id: &str) -> Self {
        Self::new(
            "InvalidInstanceId.Malformed",
            format!(
                "Invalid instance ID `{id}`. The specified instance ID has an invalid format, \
                 it should look like ins-xxxxxxxx."
            ),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
