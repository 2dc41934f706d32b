//! What a service reads to send email: `HEYBLUE_SMTP_URL` (SMTP, when set),
//! `HEYBLUE_MAIL_DIR` (where `.eml` files go otherwise) and
//! `HEYBLUE_MAIL_FROM` (the sender).

use std::path::PathBuf;

use http_service::config::{env_parsed, env_secret, ConfigError};
use secrecy::SecretString;

/// The sender when `HEYBLUE_MAIL_FROM` is unset.
pub const DEFAULT_FROM: &str = "\"Hey, Blue!\" <no-reply@heyblue.local>";

/// Where `.eml` files go when neither SMTP nor `HEYBLUE_MAIL_DIR` is set:
/// beside the local stack's default data directory (`./.local`).
pub const DEFAULT_MAIL_DIR: &str = ".local/mail";

/// How messages leave the service.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP server's URL: `smtp://host:port` (plain SMTP, as local
    /// catchers like Mailpit speak it), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://host:465` (TLS); `user:password@` for
    /// authentication. Secret, since it may carry a password.
    Smtp(SecretString),
    /// One `.eml` file per message in this directory.
    Files(PathBuf),
}

/// A service's email settings.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    /// The `From` mailbox, e.g. `"Hey, Blue!" <no-reply@heyblue.local>` (a
    /// display name with punctuation is quoted).
    pub from: String,
}

impl MailSettings {
    /// Reads `HEYBLUE_SMTP_URL`, else `HEYBLUE_MAIL_DIR` (default
    /// [`DEFAULT_MAIL_DIR`]), and `HEYBLUE_MAIL_FROM` (default
    /// [`DEFAULT_FROM`]). An empty value counts as unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        let transport = match env_secret("HEYBLUE_SMTP_URL")? {
            Some(url) => Transport::Smtp(url),
            None => Transport::Files(
                env_parsed::<PathBuf>("HEYBLUE_MAIL_DIR")?
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_MAIL_DIR)),
            ),
        };
        let from =
            env_parsed::<String>("HEYBLUE_MAIL_FROM")?.unwrap_or_else(|| DEFAULT_FROM.to_owned());
        Ok(MailSettings { transport, from })
    }

    /// SMTP at `url`, from the default sender.
    pub fn smtp(url: impl Into<String>) -> Self {
        MailSettings {
            transport: Transport::Smtp(SecretString::from(url.into())),
            from: DEFAULT_FROM.to_owned(),
        }
    }

    /// `.eml` files in `dir`, from the default sender.
    pub fn files(dir: impl Into<PathBuf>) -> Self {
        MailSettings {
            transport: Transport::Files(dir.into()),
            from: DEFAULT_FROM.to_owned(),
        }
    }

    /// The same settings with another sender.
    pub fn from_address(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }
}
