//! Typed errors of the core: configuration errors name the field they are about.

use std::fmt;

/// Why a configuration was refused. `field` is a path such as `issuers[0].jwks.keys[1].x`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration field `{field}`: {message}")]
    Parse { field: String, message: String },
    #[error("configuration field `{field}`: {message}")]
    Invalid { field: String, message: String },
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
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }
}
