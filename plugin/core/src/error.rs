//! Typed errors of the core: configuration errors name the field they are about.

use std::fmt;

/// Why a configuration was refused. `field` is a path such as `issuers[0].jwks.keys[1].x`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration field `{field}`: {message}")]
    Parse { field: String, message: String },
    #[error("configuration field `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("configuration field `{field}` needs {needs}, which this host ({host}) does not have")]
    Unsupported {
        field: String,
        needs: String,
        host: &'static str,
    },
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn field(&self) -> &str {
        match self {
            ConfigError::Parse { field, .. }
            | ConfigError::Invalid { field, .. }
            | ConfigError::Unsupported { field, .. } => field,
        }
    }
}

/// `{at}.cluster` and `{at}.path` of a control-plane endpoint: a named cluster and an absolute
/// path.
pub(crate) fn check_endpoint(at: &str, cluster: &str, path: &str) -> Result<(), ConfigError> {
    if cluster.is_empty() {
        return Err(ConfigError::invalid(
            format!("{at}.cluster"),
            "must not be empty",
        ));
    }
    if !path.starts_with('/') {
        return Err(ConfigError::invalid(
            format!("{at}.path"),
            "must start with `/`",
        ));
    }
    Ok(())
}

/// A number that must lie between `low` and `high`.
pub(crate) fn check_range(
    field: String,
    value: u64,
    low: u64,
    high: u64,
) -> Result<(), ConfigError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("must be between {low} and {high}"),
        ))
    }
}
