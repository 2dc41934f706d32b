//! Typed settings read from the environment: the HTTP listener, the token
//! verifier, and the `env_*` helpers services use for their own settings.
//!
//! Every error names the variable it came from, so a bad deployment stops at
//! start-up with a message an operator can act on ("PORT: invalid value
//! \"abc\": invalid digit found in string") instead of failing later.

use std::{env, ffi::OsString, fmt::Display, str::FromStr, time::Duration};

use secrecy::SecretString;

/// The default request body limit: DESIGN §2 answers 413 above 1 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1_048_576;

/// A setting that is missing, unparsable or unusable, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: missing")]
    Missing { name: String },
    #[error("{name}: invalid value {value:?}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    /// The value parsed but cannot be used as configured, e.g. no way to
    /// verify tokens at all.
    #[error("{name}: {reason}")]
    Unusable { name: String, reason: String },
}

/// How many requests a service handles at once by default; more are refused
/// with `503 overloaded` rather than queued.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// How long a handler may run by default before it answers
/// `503 request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's head by default (and how
/// long an idle keep-alive connection waits for the next one).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may go without sending anything by default.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the HTTP server listens, how large a request body may be, and the
/// limits that keep a service answering under abuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub port: u16,
    pub body_limit_bytes: usize,
    /// Requests handled at once; the operational endpoints have a small
    /// budget of their own on top (see [`crate::server::layered`]).
    pub max_concurrent_requests: usize,
    /// How long a request may take from its head to its response head.
    pub request_timeout: Duration,
    /// How long the request head may take to arrive, and how long an idle
    /// connection is kept for the next one.
    pub header_read_timeout: Duration,
    /// The longest silence allowed while a request body is read.
    pub body_read_timeout: Duration,
}

impl HttpConfig {
    /// Reads `PORT` (defaulting to the service's port from the design),
    /// `HEYBLUE_BODY_LIMIT_BYTES` (default 1 MiB),
    /// `HEYBLUE_MAX_CONCURRENT_REQUESTS` (256), `HEYBLUE_REQUEST_TIMEOUT_MS`
    /// (30000), `HEYBLUE_HEADER_READ_TIMEOUT_MS` (10000) and
    /// `HEYBLUE_BODY_READ_TIMEOUT_MS` (10000).
    pub fn from_env(default_port: u16) -> Result<Self, ConfigError> {
        let config = Self {
            port: env_or("PORT", default_port)?,
            body_limit_bytes: env_or("HEYBLUE_BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT_BYTES)?,
            max_concurrent_requests: env_or(
                "HEYBLUE_MAX_CONCURRENT_REQUESTS",
                DEFAULT_MAX_CONCURRENT_REQUESTS,
            )?,
            request_timeout: env_millis("HEYBLUE_REQUEST_TIMEOUT_MS", DEFAULT_REQUEST_TIMEOUT)?,
            header_read_timeout: env_millis(
                "HEYBLUE_HEADER_READ_TIMEOUT_MS",
                DEFAULT_HEADER_READ_TIMEOUT,
            )?,
            body_read_timeout: env_millis(
                "HEYBLUE_BODY_READ_TIMEOUT_MS",
                DEFAULT_BODY_READ_TIMEOUT,
            )?,
        };
        if config.max_concurrent_requests == 0 {
            // Zero would refuse every request: a typo, not a policy.
            return Err(ConfigError::Unusable {
                name: "HEYBLUE_MAX_CONCURRENT_REQUESTS".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(config)
    }

    /// A config for tests and embedded launchers that choose their own port.
    pub fn with_port(port: u16) -> Self {
        Self {
            port,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// How bearer tokens are verified: an HS256 shared secret, a JWKS URL for
/// RS256 (and other asymmetric algorithms an identity provider publishes), or
/// both, in which case each token's `alg` header picks the key source.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub jwt_secret: Option<SecretString>,
    pub jwks_url: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
}

impl AuthConfig {
    /// Reads `HEYBLUE_JWT_SECRET`, `HEYBLUE_JWKS_URL`, `HEYBLUE_JWT_ISSUER`
    /// and `HEYBLUE_JWT_AUDIENCE`. At least one key source is required: a
    /// service that cannot verify any token would answer 401 to everyone,
    /// which is a deployment mistake better caught at start-up.
    pub fn from_env() -> Result<Self, ConfigError> {
        let config = Self {
            jwt_secret: env_secret("HEYBLUE_JWT_SECRET")?,
            jwks_url: env_optional("HEYBLUE_JWKS_URL")?,
            issuer: env_optional("HEYBLUE_JWT_ISSUER")?,
            audience: env_optional("HEYBLUE_JWT_AUDIENCE")?,
        };
        config.validate()?;
        Ok(config)
    }

    /// An HS256-only config, as the local stack and tests use.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            jwt_secret: Some(SecretString::from(secret.into())),
            ..Self::default()
        }
    }

    /// A JWKS-only config pointing at an identity provider's key set.
    pub fn jwks(url: impl Into<String>) -> Self {
        Self {
            jwks_url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Checks what `from_env` cannot express in types: some key source
    /// exists, and the JWKS URL is an absolute http(s) URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.jwt_secret.is_none() && self.jwks_url.is_none() {
            return Err(ConfigError::Missing {
                name: "HEYBLUE_JWT_SECRET or HEYBLUE_JWKS_URL".to_owned(),
            });
        }
        if let Some(url) = &self.jwks_url {
            let parsed = reqwest::Url::parse(url).map_err(|err| ConfigError::Invalid {
                name: "HEYBLUE_JWKS_URL".to_owned(),
                value: url.clone(),
                reason: err.to_string(),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid {
                    name: "HEYBLUE_JWKS_URL".to_owned(),
                    value: url.clone(),
                    reason: "scheme must be http or https".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Parses `name` if it is set, else returns `default`.
///
/// An empty value counts as unset: compose files and shells commonly export
/// `VAR=` to mean "not configured", and treating that as a parse error would
/// only force operators to delete the line.
pub fn env_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(env_parsed(name)?.unwrap_or(default))
}

/// Reads a duration given in milliseconds (`name` ends in `_MS`), else
/// returns `default`. Zero is refused: every duration read this way is a
/// timeout, and a zero timeout would fail everything at once.
pub fn env_millis(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match env_parsed::<u64>(name)? {
        None => Ok(default),
        Some(0) => Err(ConfigError::Unusable {
            name: name.to_owned(),
            reason: "must be at least 1 ms".to_owned(),
        }),
        Some(millis) => Ok(Duration::from_millis(millis)),
    }
}

/// Parses `name`, which must be set and non-empty.
pub fn env_required<T>(name: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    env_parsed(name)?.ok_or_else(|| ConfigError::Missing {
        name: name.to_owned(),
    })
}

/// Parses `name` if it is set and non-empty.
pub fn env_parsed<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let Some(raw) = env_optional(name)? else {
        return Ok(None);
    };
    raw.parse()
        .map(Some)
        .map_err(|err: T::Err| ConfigError::Invalid {
            name: name.to_owned(),
            value: raw,
            reason: err.to_string(),
        })
}

/// Reads a secret. Its value never appears in an error, a `Debug` print or a
/// log line: `SecretString` redacts itself, and the only error possible here
/// (not Unicode) deliberately omits the value.
pub fn env_secret(name: &str) -> Result<Option<SecretString>, ConfigError> {
    match env::var_os(name) {
        None => Ok(None),
        Some(raw) if raw.is_empty() => Ok(None),
        Some(raw) => raw
            .into_string()
            .map(|value| Some(SecretString::from(value)))
            .map_err(|_| ConfigError::Invalid {
                name: name.to_owned(),
                value: "<redacted>".to_owned(),
                reason: "not valid Unicode".to_owned(),
            }),
    }
}

fn env_optional(name: &str) -> Result<Option<String>, ConfigError> {
    match env::var_os(name) {
        None => Ok(None),
        Some(raw) if raw.is_empty() => Ok(None),
        Some(raw) => raw
            .into_string()
            .map(Some)
            .map_err(|raw: OsString| ConfigError::Invalid {
                name: name.to_owned(),
                value: raw.to_string_lossy().into_owned(),
                reason: "not valid Unicode".to_owned(),
            }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Each test uses its own variable names: the process environment is
    // shared by the test threads.

    #[test]
    fn invalid_port_names_the_variable_and_the_value() {
        env::set_var("HTTP_SERVICE_TEST_PORT_BAD", "abc");
        let err = env_or::<u16>("HTTP_SERVICE_TEST_PORT_BAD", 8081).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTP_SERVICE_TEST_PORT_BAD: invalid value \"abc\": invalid digit found in string"
        );
    }

    #[test]
    fn missing_required_variable_says_missing() {
        let err = env_required::<String>("HTTP_SERVICE_TEST_NEVER_SET").unwrap_err();
        assert_eq!(err.to_string(), "HTTP_SERVICE_TEST_NEVER_SET: missing");
    }

    #[test]
    fn unset_and_empty_variables_fall_back_to_the_default() {
        assert_eq!(env_or("HTTP_SERVICE_TEST_UNSET", 7u16).unwrap(), 7);
        env::set_var("HTTP_SERVICE_TEST_EMPTY", "");
        assert_eq!(env_or("HTTP_SERVICE_TEST_EMPTY", 9u16).unwrap(), 9);
        env::set_var("HTTP_SERVICE_TEST_SET", "8089");
        assert_eq!(env_or("HTTP_SERVICE_TEST_SET", 9u16).unwrap(), 8089);
    }

    #[test]
    fn durations_are_read_in_milliseconds_and_zero_is_refused() {
        env::set_var("HTTP_SERVICE_TEST_TIMEOUT_MS", "1500");
        assert_eq!(
            env_millis("HTTP_SERVICE_TEST_TIMEOUT_MS", Duration::from_secs(9)).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            env_millis("HTTP_SERVICE_TEST_TIMEOUT_UNSET_MS", Duration::from_secs(9)).unwrap(),
            Duration::from_secs(9)
        );
        env::set_var("HTTP_SERVICE_TEST_TIMEOUT_ZERO_MS", "0");
        let err =
            env_millis("HTTP_SERVICE_TEST_TIMEOUT_ZERO_MS", Duration::from_secs(9)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTP_SERVICE_TEST_TIMEOUT_ZERO_MS: must be at least 1 ms"
        );
    }

    #[test]
    fn empty_secret_counts_as_unset() {
        env::set_var("HTTP_SERVICE_TEST_SECRET_EMPTY", "");
        assert!(env_secret("HTTP_SERVICE_TEST_SECRET_EMPTY")
            .unwrap()
            .is_none());
    }

    #[test]
    fn auth_config_without_any_key_source_is_rejected() {
        let err = AuthConfig::default().validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "HEYBLUE_JWT_SECRET or HEYBLUE_JWKS_URL: missing"
        );
    }

    #[test]
    fn auth_config_with_relative_jwks_url_is_rejected() {
        let err = AuthConfig::jwks("/keys").validate().unwrap_err();
        assert!(err
            .to_string()
            .starts_with("HEYBLUE_JWKS_URL: invalid value"));
    }
}
