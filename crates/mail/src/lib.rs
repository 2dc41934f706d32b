//! Email for every service: one [`Mailer`], built from [`MailSettings`],
//! that sends an [`Email`] over SMTP when a server is configured
//! (`HEYBLUE_SMTP_URL`) and otherwise writes it as an `.eml` file under a
//! directory (`HEYBLUE_MAIL_DIR`), so a fleet without a mail server still
//! shows what it would have sent.
//!
//! Modules: [`settings`] what is read from the environment, [`testing`] a
//! local SMTP server that records what it receives, for tests.
//!
//! Sending is at least once: a caller runs it from a durable job, and a job
//! that dies after the server accepted the message sends it again. The
//! `Message-ID` a caller derives from its own ids ([`Email::message_id`])
//! lets mail clients fold such a duplicate into the first.

pub mod settings;
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

pub use settings::{MailSettings, Transport, DEFAULT_FROM, DEFAULT_MAIL_DIR};

/// How long one SMTP exchange may take before the send fails (and its job
/// retries later).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address, e.g. `ada@example.com` or `Ada <ada@example.com>`.
    pub to: String,
    pub subject: String,
    /// The plain-text body every client can show.
    pub text: String,
    /// An HTML alternative of the same content, when there is one.
    pub html: Option<String>,
    /// The `Message-ID` header without angle brackets, e.g.
    /// `<notification id>@heyblue`; derived from the caller's ids so that a
    /// message sent twice is recognisably one. Generated when `None`.
    pub message_id: Option<String>,
}

impl Email {
    /// A plain-text message.
    pub fn text(
        to: impl Into<String>,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Email {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            html: None,
            message_id: None,
        }
    }

    /// The same message with an HTML alternative.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// The same message with a `Message-ID` of the caller's choosing.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }
}

/// Why a message was not sent. [`SendError::is_permanent`] tells a job
/// whether retrying could help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient (or the configured sender) is not an email address.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// The message could not be assembled.
    #[error("the message cannot be built: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The `.eml` file could not be written.
    #[error("writing the message under {dir} failed: {source}")]
    File {
        dir: PathBuf,
        #[source]
        source: lettre::transport::file::Error,
    },
}

impl SendError {
    /// Whether sending the same message again cannot succeed: a malformed
    /// address, or an SMTP server's permanent (5xx) answer. Unreachable
    /// servers, temporary (4xx) answers and file errors may pass later.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::InvalidAddress { .. } | SendError::Build(_) => true,
            SendError::Smtp(error) => error.is_permanent(),
            SendError::File { .. } => false,
        }
    }
}

/// Why a [`Mailer`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("HEYBLUE_MAIL_FROM: {0:?} is not an email address: {1}")]
    From(String, String),
    #[error("HEYBLUE_SMTP_URL: {0}")]
    SmtpUrl(lettre::transport::smtp::Error),
    #[error("HEYBLUE_MAIL_DIR: cannot create {dir}: {source}")]
    MailDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Sends [`Email`]s the way the settings say. Cheap to clone: clones share
/// one SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Sender,
}

#[derive(Clone)]
enum Sender {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, never the credentials.
        server: String,
    },
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("delivers", &self.describe())
            .finish()
    }
}

impl Mailer {
    /// A mailer for `settings`. The mail directory is created here, so a
    /// directory that cannot be written stops start-up rather than the first
    /// email. No SMTP connection is opened until the first message.
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailerError> {
        let from: Mailbox =
            settings
                .from
                .parse()
                .map_err(|error: lettre::address::AddressError| {
                    MailerError::From(settings.from.clone(), error.to_string())
                })?;
        let transport = match &settings.transport {
            Transport::Smtp(url) => {
                // `smtp://host:port` speaks plain SMTP, which is what local
                // catchers such as Mailpit expect; `smtps://` and
                // `smtp://…?tls=required` use TLS for real servers.
                let url = url.expose_secret();
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailerError::SmtpUrl)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Sender::Smtp {
                    transport,
                    server: server_of(url),
                }
            }
            Transport::Files(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| MailerError::MailDir {
                    dir: dir.clone(),
                    source,
                })?;
                Sender::Files {
                    transport: AsyncFileTransport::new(dir),
                    dir: dir.clone(),
                }
            }
        };
        Ok(Mailer { from, transport })
    }

    /// Where messages go, for logs and banners: `SMTP server host:port` or
    /// `.eml files in <dir>`.
    pub fn describe(&self) -> String {
        match &self.transport {
            Sender::Smtp { server, .. } => format!("SMTP server {server}"),
            Sender::Files { dir, .. } => format!(".eml files in {}", dir.display()),
        }
    }

    /// The directory `.eml` files are written to, when that is the transport.
    pub fn mail_dir(&self) -> Option<&Path> {
        match &self.transport {
            Sender::Smtp { .. } => None,
            Sender::Files { dir, .. } => Some(dir),
        }
    }

    /// Sends `email` from the configured sender.
    #[tracing::instrument(skip_all, fields(subject = %email.subject))]
    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        let message = self.message(email)?;
        match &self.transport {
            Sender::Smtp { transport, .. } => {
                transport.send(message).await?;
            }
            Sender::Files { transport, dir } => {
                transport
                    .send(message)
                    .await
                    .map_err(|source| SendError::File {
                        dir: dir.clone(),
                        source,
                    })?;
            }
        }
        tracing::info!(delivered_to = %self.describe(), "email sent");
        Ok(())
    }

    fn message(&self, email: &Email) -> Result<Message, SendError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(
                |error: lettre::address::AddressError| SendError::InvalidAddress {
                    address: email.to.clone(),
                    reason: error.to_string(),
                },
            )?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(email.message_id.as_ref().map(|id| format!("<{id}>")));
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone());
        let message = match &email.html {
            None => builder.singlepart(text)?,
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            )?,
        };
        Ok(message)
    }
}

/// `host[:port]` of an SMTP URL, without its scheme, credentials or query,
/// so that logs can say where mail goes without leaking a password.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::server_of;

    #[test]
    fn the_server_is_named_without_credentials() {
        assert_eq!(server_of("smtp://mailpit:1025"), "mailpit:1025");
        assert_eq!(
            server_of("smtps://user:p%40ss@mail.example.com:465/heyblue?tls=required"),
            "mail.example.com:465"
        );
    }
}
