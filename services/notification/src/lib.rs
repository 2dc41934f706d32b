//! notification: turns the order's, payment's and dispatch's events into
//! notifications for the order's customer: an in-app inbox
//! (`/v1/notifications`) and the same words by email.
//!
//! Modules: [`events`] the handlers per topic, [`domain`] the kinds and their
//! wording, [`inbox`] the rules (told once, parked until the customer is
//! known, emailed in the same transaction), [`store`] the queries, [`email`]
//! the job that sends, [`parked`] and [`metrics`] what `/metrics` shows,
//! [`http`] the inbox's endpoints.

pub mod domain;
pub mod email;
pub mod events;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod parked;
pub mod store;

use anyhow::Context;
use http_service::config::ConfigError;
use mail::{MailSettings, Mailer};
use service_host::{App, Host, HostConfig, ServiceSettings, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/notification");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::NOTIFICATION.name,
    default_port: fleet::NOTIFICATION.port,
    schema: fleet::NOTIFICATION.schema,
    migrator: &MIGRATOR,
    produces: fleet::NOTIFICATION.produces,
};

/// notification's own settings: where its email goes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_SMTP_URL`, else `.eml` files in `HEYBLUE_MAIL_DIR`; the
    /// sender from `HEYBLUE_MAIL_FROM`.
    pub mail: MailSettings,
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Settings {
            mail: MailSettings::from_env()?,
        })
    }
}

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let mailer = Mailer::new(&settings.mail).context("invalid email settings")?;
    let host = Host::start(&SPEC, config).await?;
    let metrics = metrics::NotificationMetrics::register(&host.registry)?;
    tracing::info!(emails = %mailer.describe(), "emails go here");
    let consumer = host
        .consumer()
        .on(events::CheckoutHandler)
        .on(events::OrderHandler)
        .on(events::PaymentHandler)
        .on(events::DispatchHandler);
    let routes = http::router(host.state());
    let jobs = host
        .jobs()
        .on(email::SendEmail {
            mailer,
            metrics: metrics.clone(),
        })
        .every(parked::ReportParked { metrics });
    host.serve(routes, consumer, jobs).await
}
