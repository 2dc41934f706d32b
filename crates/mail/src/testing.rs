//! A local SMTP server for tests: [`SmtpCatcher`] speaks the protocol a real
//! mail server speaks (greeting, `EHLO`, `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-stuffing, `RSET`, `NOOP`, `QUIT`), accepts everything, and keeps each
//! message as it arrived, so a test asserts on what a recipient would get.
//! It can also refuse messages with a temporary `451`, as a busy server
//! does, to show that senders retry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message itself (headers and body) with dot-stuffing undone and
    /// `\r\n` line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The first header called `name` (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((field, value)) = line.split_once(':') {
                if field.trim().eq_ignore_ascii_case(name) {
                    found = Some(value.trim().to_owned());
                }
            }
        }
        found
    }

    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// Everything after the headers, as sent (MIME parts included).
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The `text/plain` part, decoded (see [`part`]).
    pub fn text(&self) -> Option<String> {
        part(&self.data, "text/plain")
    }

    /// The `text/html` part, decoded (see [`part`]).
    pub fn html(&self) -> Option<String> {
        part(&self.data, "text/html")
    }
}

/// The first part of type `content_type` in a message as it travels (an
/// SMTP `DATA` or an `.eml` file), with its quoted-printable or base64
/// transfer encoding undone: what a mail client would show. Reads what
/// [`crate::Mailer`] writes (one part, or `multipart/alternative`), not
/// every MIME shape.
pub fn part(message: &str, content_type: &str) -> Option<String> {
    let message = message.replace("\r\n", "\n");
    let (head, body) = message.split_once("\n\n")?;
    let headers = unfold(head);
    let kind = header_in(&headers, "Content-Type").unwrap_or_else(|| "text/plain".to_owned());
    if let Some(boundary) = kind
        .split(';')
        .map(str::trim)
        .find_map(|param| param.strip_prefix("boundary="))
    {
        let delimiter = format!("--{}", boundary.trim_matches('"'));
        return body
            .split(&delimiter)
            .skip(1)
            .filter(|section| !section.starts_with("--"))
            .find_map(|section| part(section.trim_start_matches('\n'), content_type));
    }
    if !kind.to_ascii_lowercase().starts_with(content_type) {
        return None;
    }
    let encoding = header_in(&headers, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_owned(),
    })
}

/// Header lines with continuation lines joined to the line they continue.
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.lines() {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

fn header_in(lines: &[String], name: &str) -> Option<String> {
    lines.iter().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'=')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(body: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in body.bytes() {
        let Some(value) = ALPHABET.iter().position(|&c| c == byte) else {
            continue; // line ends and padding
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Default)]
struct State {
    /// Whether accepted messages are kept, or only counted.
    keep: bool,
    messages: Vec<ReceivedMail>,
    accepted: usize,
    /// How many of the next messages to refuse with `451`.
    refuse: usize,
    refused: usize,
}

/// An SMTP server on a free loopback port; it stops when dropped.
#[derive(Debug)]
pub struct SmtpCatcher {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl SmtpCatcher {
    /// Starts the server.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> SmtpCatcher {
        SmtpCatcher::serving(true).await
    }

    /// Starts a server that accepts messages as [`start`](Self::start)'s
    /// does but keeps none, only their number ([`accepted`](Self::accepted)):
    /// for a benchmark's thousands of emails.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start_counting() -> SmtpCatcher {
        SmtpCatcher::serving(false).await
    }

    async fn serving(keep: bool) -> SmtpCatcher {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for the SMTP catcher");
        let address = listener.local_addr().expect("the catcher's address");
        let state = Arc::new(Mutex::new(State {
            keep,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so dropping the catcher (which
            // aborts this task) closes them too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, shared.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        SmtpCatcher {
            address,
            state,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`, the form `HEYBLUE_SMTP_URL` takes.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many messages were accepted so far, kept or not.
    pub fn accepted(&self) -> usize {
        lock(&self.state).accepted
    }

    /// Every message accepted so far, in the order they arrived (none for
    /// a server that only counts).
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.state).messages.clone()
    }

    /// The messages accepted for `recipient` (envelope `RCPT TO`).
    pub fn messages_to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.messages()
            .into_iter()
            .filter(|mail| {
                mail.rcpt_to
                    .iter()
                    .any(|to| to.eq_ignore_ascii_case(recipient))
            })
            .collect()
    }

    /// Answers the next `count` messages with `451` (try again later) at the
    /// end of `DATA`, keeping none of them.
    pub fn refuse_next(&self, count: usize) {
        lock(&self.state).refuse = count;
    }

    /// How many messages were refused so far.
    pub fn refused(&self) -> usize {
        lock(&self.state).refused
    }
}

impl Drop for SmtpCatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide every later assertion.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One SMTP conversation. Errors end it, as a closed socket would.
async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write
        .write_all(b"220 catcher.local ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut lines).await else {
            return;
        };
        let upper = line.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") {
            "250-catcher.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n".to_owned()
        } else if upper.starts_with("HELO") {
            "250 catcher.local\r\n".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = Some(path_of(&line["MAIL FROM:".len()..]));
            rcpt_to.clear();
            "250 2.1.0 OK\r\n".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            if mail_from.is_none() {
                "503 5.5.1 MAIL first\r\n".to_owned()
            } else {
                rcpt_to.push(path_of(&line["RCPT TO:".len()..]));
                "250 2.1.5 OK\r\n".to_owned()
            }
        } else if upper == "DATA" {
            if rcpt_to.is_empty() {
                "503 5.5.1 RCPT first\r\n".to_owned()
            } else {
                if write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let Some(data) = read_data(&mut lines).await else {
                    return;
                };
                let mail = ReceivedMail {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                };
                let mut state = lock(&state);
                if state.refuse > 0 {
                    state.refuse -= 1;
                    state.refused += 1;
                    "451 4.3.0 Try again later\r\n".to_owned()
                } else {
                    state.accepted += 1;
                    if state.keep {
                        state.messages.push(mail);
                    }
                    "250 2.0.0 Queued\r\n".to_owned()
                }
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpt_to.clear();
            "250 2.0.0 OK\r\n".to_owned()
        } else if upper.starts_with("NOOP") {
            "250 2.0.0 OK\r\n".to_owned()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not implemented\r\n".to_owned()
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The next command line without its line end; `None` once the peer is gone.
async fn read_line(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut buffer = Vec::new();
    match lines.read_until(b'\n', &mut buffer).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(
            String::from_utf8_lossy(&buffer)
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
    }
}

/// The message after `DATA`, up to the line holding a single dot, with the
/// sender's dot-stuffing undone.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut data = String::new();
    loop {
        let line = read_line(lines).await?;
        if line == "." {
            return Some(data);
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
        data.push_str("\r\n");
    }
}

/// `<ada@example.com> SIZE=123` → `ada@example.com`.
fn path_of(argument: &str) -> String {
    let argument = argument.trim();
    let path = argument.split_whitespace().next().unwrap_or_default();
    path.trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}
