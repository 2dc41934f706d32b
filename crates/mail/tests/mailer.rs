//! The mailer as a recipient sees it: over SMTP to a local server that
//! records what arrives, and as `.eml` files when no server is configured.

use mail::testing::SmtpCatcher;
use mail::{Email, MailSettings, Mailer};

fn receipt() -> Email {
    Email::text(
        "Ada Lovelace <ada@example.com>",
        "Your order has shipped",
        "UPS is bringing it, and this sentence is long enough that it must be wrapped for the wire.\nTracking number: 1Z999AA10123456784\n.a line that starts with a dot\n",
    )
    .with_message_id("0190a1b2-c3d4@heyblue")
}

#[tokio::test]
async fn smtp_delivers_the_message_to_its_recipient_from_the_configured_sender() {
    let server = SmtpCatcher::start().await;
    let mailer =
        Mailer::new(&MailSettings::smtp(server.url()).from_address("Shop <shop@heyblue.test>"))
            .expect("an SMTP mailer");

    mailer.send(&receipt()).await.expect("sent");

    let received = server.messages_to("ada@example.com");
    assert_eq!(received.len(), 1, "{:?}", server.messages());
    let mail = &received[0];
    assert_eq!(mail.mail_from, "shop@heyblue.test");
    assert_eq!(mail.subject().as_deref(), Some("Your order has shipped"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Shop <shop@heyblue.test>")
    );
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<0190a1b2-c3d4@heyblue>")
    );
    assert!(
        mail.body().contains("Tracking number: 1Z999AA10123456784"),
        "{}",
        mail.data
    );
    assert!(
        mail.body().contains("\r\n.a line that starts with a dot"),
        "{}",
        mail.data
    );
    assert_eq!(
        mailer.describe(),
        format!("SMTP server {}", server.address())
    );
}

#[tokio::test]
async fn an_html_alternative_travels_with_the_text() {
    let server = SmtpCatcher::start().await;
    let mailer = Mailer::new(&MailSettings::smtp(server.url())).expect("an SMTP mailer");

    mailer
        .send(&receipt().with_html("<p>UPS is bringing it.</p>"))
        .await
        .expect("sent");

    let mail = &server.messages()[0];
    assert!(
        mail.header("Content-Type")
            .is_some_and(|value| value.starts_with("multipart/alternative")),
        "{}",
        mail.data
    );
    assert!(
        mail.body().contains("Content-Type: text/plain"),
        "{}",
        mail.data
    );
    assert!(
        mail.body().contains("<p>UPS is bringing it.</p>"),
        "{}",
        mail.data
    );
    // The default sender, since none was configured (its display name
    // travels as an RFC 2047 encoded word because of its punctuation).
    assert_eq!(mail.mail_from, "no-reply@heyblue.local");
    let from = mail.header("From").unwrap_or_default();
    assert!(from.ends_with("<no-reply@heyblue.local>"), "{from}");
}

#[tokio::test]
async fn a_temporary_refusal_is_not_permanent_and_the_next_try_arrives() {
    let server = SmtpCatcher::start().await;
    server.refuse_next(1);
    let mailer = Mailer::new(&MailSettings::smtp(server.url())).expect("an SMTP mailer");

    let error = mailer.send(&receipt()).await.expect_err("refused with 451");
    assert!(!error.is_permanent(), "{error}");
    assert!(server.messages().is_empty());

    mailer
        .send(&receipt())
        .await
        .expect("accepted on the second try");
    assert_eq!(server.refused(), 1);
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn a_counting_server_accepts_and_counts_what_it_does_not_keep() {
    let server = SmtpCatcher::start_counting().await;
    server.refuse_next(1);
    let mailer = Mailer::new(&MailSettings::smtp(server.url())).expect("an SMTP mailer");

    mailer.send(&receipt()).await.expect_err("refused with 451");
    for _ in 0..3 {
        mailer.send(&receipt()).await.expect("accepted");
    }
    assert_eq!(server.accepted(), 3, "refused messages are not counted");
    assert_eq!(server.refused(), 1);
    assert!(server.messages().is_empty(), "nothing kept");
}

#[tokio::test]
async fn an_unreachable_server_is_a_failure_worth_retrying() {
    let port = {
        let server = SmtpCatcher::start().await;
        server.address().port()
    };
    let mailer =
        Mailer::new(&MailSettings::smtp(format!("smtp://127.0.0.1:{port}"))).expect("a mailer");
    let error = mailer.send(&receipt()).await.expect_err("nobody listens");
    assert!(!error.is_permanent(), "{error}");
}

#[tokio::test]
async fn a_malformed_recipient_is_refused_for_good_before_any_connection() {
    let server = SmtpCatcher::start().await;
    let mailer = Mailer::new(&MailSettings::smtp(server.url())).expect("a mailer");
    let error = mailer
        .send(&Email::text("not an address", "Hello", "Hi"))
        .await
        .expect_err("no such address");
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("not an address"), "{error}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn without_a_server_each_message_is_an_eml_file_in_the_mail_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mail_dir = dir.path().join("mail");
    let mailer = Mailer::new(&MailSettings::files(&mail_dir)).expect("a file mailer");
    assert_eq!(mailer.mail_dir(), Some(mail_dir.as_path()));
    assert!(mailer.describe().contains(&mail_dir.display().to_string()));

    mailer.send(&receipt()).await.expect("written");
    mailer
        .send(&Email::text("bob@example.com", "Delivered", "Enjoy."))
        .await
        .expect("written");

    let mut files: Vec<String> = std::fs::read_dir(&mail_dir)
        .expect("the mail directory exists")
        .map(|entry| {
            let path = entry.expect("an entry").path();
            assert_eq!(path.extension().and_then(|e| e.to_str()), Some("eml"));
            std::fs::read_to_string(&path).expect("a readable message")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let shipped = files
        .iter()
        .find(|text| text.contains("Subject: Your order has shipped"))
        .expect("the shipped message");
    let to_line = shipped
        .lines()
        .find(|line| line.starts_with("To: "))
        .expect("a To header");
    assert!(
        to_line.contains("Ada Lovelace") && to_line.ends_with("<ada@example.com>"),
        "{to_line}"
    );
    assert!(
        shipped.contains("Tracking number: 1Z999AA10123456784"),
        "{shipped}"
    );
    assert!(files
        .iter()
        .any(|text| text.contains("To: bob@example.com")));
}

#[test]
fn a_sender_that_is_not_an_address_stops_the_mailer_from_being_built() {
    let error = Mailer::new(&MailSettings::files("unused").from_address("nobody"))
        .expect_err("not an address");
    assert!(
        error.to_string().starts_with("HEYBLUE_MAIL_FROM"),
        "{error}"
    );
}
