//! The development mail catcher: a small real SMTP server (RFC 5321: HELO/EHLO, MAIL FROM,
//! RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT) that stores every message it accepts in
//! `dev_mailbox` instead of delivering it. `ringledger serve` starts it in development when
//! `smtp_url` is unset; tests start their own. Everything is bounded: message size, line
//! length, recipients, connections, idle time. It listens where it is told (127.0.0.1 by
//! default) and must never relay mail anywhere or run in production.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::mailbox;

/// Bounds of the catcher.
#[derive(Debug, Clone)]
pub struct CatcherLimits {
    /// A message (headers and body, after dot-unstuffing) larger than this is refused (552).
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    /// A client silent this long is disconnected.
    pub idle_timeout_ms: u64,
}

impl Default for CatcherLimits {
    fn default() -> Self {
        CatcherLimits {
            max_message_bytes: 1024 * 1024,
            max_recipients: 100,
            max_connections: 32,
            idle_timeout_ms: 60_000,
        }
    }
}

/// RFC 5321 4.5.3.1: command lines up to 512 octets, text lines up to 1000; we allow some slack.
const MAX_LINE_BYTES: usize = 4_096;
/// Commands refused in a row before the catcher hangs up on a client.
const MAX_BAD_COMMANDS: u32 = 20;

/// A running catcher; stops when [`MailCatcher::stop`] is called or when dropped.
pub struct MailCatcher {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MailCatcher {
    /// Binds `bind` (port 0 picks a free port) and serves until stopped.
    pub async fn start(pool: PgPool, bind: SocketAddr, limits: CatcherLimits) -> anyhow::Result<MailCatcher> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the mail catcher on {bind}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, pool, Arc::new(limits), stopped));
        tracing::info!(%addr, "development mail catcher listening");
        Ok(MailCatcher {
            addr,
            stop,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give the mailer: `smtp://IP:PORT` (plain SMTP, loopback only).
    pub fn smtp_url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MailCatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    pool: PgPool,
    limits: Arc<CatcherLimits>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "mail catcher: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream));
            continue;
        };
        let (pool, limits, mut stop) = (pool.clone(), limits.clone(), stopped.clone());
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = stop.changed() => {}
                result = serve(stream, &pool, &limits) => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "mail catcher: connection ended");
                    }
                }
            }
        });
    }
}

async fn refuse_busy(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"421 4.3.2 too many connections, try again later\r\n")
        .await;
}

/// One SMTP session on `stream`.
async fn serve(stream: TcpStream, pool: &PgPool, limits: &CatcherLimits) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    reply(
        &mut write,
        "220 localhost RingLedger development mail catcher ESMTP",
    )
    .await?;
    let mut session = Session::new(limits);
    loop {
        let line = match tokio::time::timeout(idle, read_line(&mut read, MAX_LINE_BYTES)).await {
            Err(_) => {
                reply(&mut write, "421 4.4.2 idle too long, closing").await?;
                return Ok(());
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(Line::Eof)) => return Ok(()),
            Ok(Ok(Line::TooLong)) => {
                reply(&mut write, "500 5.5.2 line too long").await?;
                continue;
            }
            Ok(Ok(Line::Text(line))) => line,
        };
        match session.command(&line) {
            Step::Reply(text) => reply(&mut write, &text).await?,
            Step::Close(text) => {
                reply(&mut write, &text).await?;
                return Ok(());
            }
            Step::ReadData => {
                reply(&mut write, "354 end data with <CR><LF>.<CR><LF>").await?;
                let data = tokio::time::timeout(idle * 5, read_data(&mut read, limits.max_message_bytes))
                    .await
                    .context("DATA took too long")??;
                let text = match data {
                    Data::TooLarge => {
                        format!("552 5.3.4 message larger than {} bytes", limits.max_message_bytes)
                    }
                    Data::Message(raw) => {
                        match mailbox::store(pool, &session.from, &session.rcpt, &raw).await {
                            Ok(id) => format!("250 2.0.0 OK stored as {id}"),
                            Err(e) => {
                                tracing::warn!(error = %e, "mail catcher: cannot store a message");
                                "451 4.3.0 cannot store the message now, try again".to_owned()
                            }
                        }
                    }
                };
                session.reset();
                reply(&mut write, &text).await?;
            }
        }
        if session.bad_commands >= MAX_BAD_COMMANDS {
            reply(&mut write, "421 4.7.0 too many errors, closing").await?;
            return Ok(());
        }
    }
}

async fn reply(write: &mut (impl AsyncWrite + Unpin), text: &str) -> std::io::Result<()> {
    write.write_all(text.as_bytes()).await?;
    write.write_all(b"\r\n").await?;
    write.flush().await
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// One line without its CRLF (or bare LF), reading at most `max` bytes of it into memory: the
/// rest of an over-long line is read and thrown away.
async fn read_line(read: &mut (impl AsyncBufRead + Unpin), max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = read.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Eof
            } else {
                Line::TooLong
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let used = chunk.len();
        if line.len() + used > max + 2 {
            too_long = true;
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        read.consume(used);
        if done {
            if too_long {
                return Ok(Line::TooLong);
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(Line::Text(line));
        }
    }
}

enum Data {
    Message(Vec<u8>),
    TooLarge,
}

/// The message after a 354: lines up to a lone ".", dot-unstuffed (RFC 5321 4.5.2), CRLF-joined.
/// Past `max_bytes` the rest is read and discarded so the session stays in step.
async fn read_data(read: &mut (impl AsyncBufRead + Unpin), max_bytes: usize) -> anyhow::Result<Data> {
    let mut message = Vec::new();
    let mut too_large = false;
    loop {
        let line = match read_line(read, MAX_LINE_BYTES).await? {
            Line::Eof => anyhow::bail!("connection closed during DATA"),
            Line::TooLong => {
                too_large = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == b"." {
            return Ok(if too_large {
                Data::TooLarge
            } else {
                Data::Message(message)
            });
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + line.len() + 2 > max_bytes {
            too_large = true;
        }
        if !too_large {
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
        }
    }
}

/// What the connection does after a command.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Reply(String),
    ReadData,
    Close(String),
}

/// The SMTP command state machine, without IO.
struct Session<'a> {
    limits: &'a CatcherLimits,
    greeted: bool,
    from: String,
    has_from: bool,
    rcpt: Vec<String>,
    bad_commands: u32,
}

impl<'a> Session<'a> {
    fn new(limits: &'a CatcherLimits) -> Session<'a> {
        Session {
            limits,
            greeted: false,
            from: String::new(),
            has_from: false,
            rcpt: Vec::new(),
            bad_commands: 0,
        }
    }

    fn reset(&mut self) {
        self.from.clear();
        self.has_from = false;
        self.rcpt.clear();
    }

    fn command(&mut self, line: &[u8]) -> Step {
        let line = String::from_utf8_lossy(line);
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        let step = match verb.as_str() {
            "EHLO" => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!(
                    "250-localhost\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 SMTPUTF8",
                    self.limits.max_message_bytes
                ))
            }
            "HELO" => {
                self.greeted = true;
                self.reset();
                Step::Reply("250 localhost".to_owned())
            }
            "MAIL" => self.mail_from(arg),
            "RCPT" => self.rcpt_to(arg),
            "DATA" if !self.has_from || self.rcpt.is_empty() => {
                Step::Reply("503 5.5.1 need MAIL and RCPT first".to_owned())
            }
            "DATA" => Step::ReadData,
            "RSET" => {
                self.reset();
                Step::Reply("250 2.0.0 OK".to_owned())
            }
            "NOOP" => Step::Reply("250 2.0.0 OK".to_owned()),
            "VRFY" => Step::Reply("252 2.1.5 cannot verify, will accept".to_owned()),
            "QUIT" => return Step::Close("221 2.0.0 bye".to_owned()),
            _ => Step::Reply("502 5.5.1 command not implemented".to_owned()),
        };
        match &step {
            Step::Reply(text) if text.starts_with('5') => self.bad_commands += 1,
            _ => self.bad_commands = 0,
        }
        step
    }

    fn mail_from(&mut self, arg: &str) -> Step {
        if !self.greeted {
            return Step::Reply("503 5.5.1 say EHLO first".to_owned());
        }
        let Some((address, params)) = path_after(arg, "FROM:") else {
            return Step::Reply("501 5.5.4 syntax: MAIL FROM:<address>".to_owned());
        };
        let declared_size = params.split_whitespace().find_map(|p| {
            p.to_ascii_uppercase()
                .strip_prefix("SIZE=")
                .and_then(|n| n.parse::<usize>().ok())
        });
        if declared_size.is_some_and(|n| n > self.limits.max_message_bytes) {
            return Step::Reply(format!(
                "552 5.3.4 message larger than {} bytes",
                self.limits.max_message_bytes
            ));
        }
        self.reset();
        self.from = address;
        self.has_from = true;
        Step::Reply("250 2.1.0 OK".to_owned())
    }

    fn rcpt_to(&mut self, arg: &str) -> Step {
        if !self.has_from {
            return Step::Reply("503 5.5.1 need MAIL first".to_owned());
        }
        let Some((address, _)) = path_after(arg, "TO:") else {
            return Step::Reply("501 5.5.4 syntax: RCPT TO:<address>".to_owned());
        };
        if address.is_empty() || !address.contains('@') {
            return Step::Reply("501 5.1.3 bad recipient address".to_owned());
        }
        if self.rcpt.len() >= self.limits.max_recipients {
            return Step::Reply("452 4.5.3 too many recipients".to_owned());
        }
        self.rcpt.push(address);
        Step::Reply("250 2.1.5 OK".to_owned())
    }
}

/// `FROM:<a@b> SIZE=10` -> (`a@b`, `SIZE=10`); the keyword is matched without case.
fn path_after<'s>(arg: &'s str, keyword: &str) -> Option<(String, &'s str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (address, params) = rest.split_once('>')?;
    if address.len() > 320 {
        return None;
    }
    Some((address.to_owned(), params.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(session: &mut Session<'_>, line: &str) -> String {
        match session.command(line.as_bytes()) {
            Step::Reply(text) | Step::Close(text) => text,
            Step::ReadData => "354".to_owned(),
        }
    }

    #[test]
    fn the_command_sequence_is_enforced() {
        let limits = CatcherLimits {
            max_recipients: 1,
            ..CatcherLimits::default()
        };
        let mut s = Session::new(&limits);
        assert!(run(&mut s, "MAIL FROM:<a@b.c>").starts_with("503"));
        assert!(run(&mut s, "EHLO client").contains("250 SMTPUTF8"));
        assert!(run(&mut s, "DATA").starts_with("503"));
        assert!(run(&mut s, "RCPT TO:<x@y.z>").starts_with("503"));
        assert!(run(&mut s, "mail from:<a@b.c> SIZE=10").starts_with("250"));
        assert!(run(&mut s, "RCPT TO:<x@y.z>").starts_with("250"));
        assert!(run(&mut s, "RCPT TO:<second@y.z>").starts_with("452"));
        assert_eq!(run(&mut s, "DATA"), "354");
        assert!(run(&mut s, "RSET").starts_with("250"));
        assert!(
            run(&mut s, "DATA").starts_with("503"),
            "RSET forgets the envelope"
        );
        assert!(run(&mut s, "NOOP").starts_with("250"));
        assert!(run(&mut s, "MAIL FROM:<a@b.c> SIZE=99999999").starts_with("552"));
        assert!(run(&mut s, "BDAT 10").starts_with("502"));
        assert_eq!(s.command(b"QUIT"), Step::Close("221 2.0.0 bye".to_owned()));
    }

    #[tokio::test]
    async fn data_is_dot_unstuffed_and_bounded() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n";
        let mut read = BufReader::new(input);
        let Data::Message(message) = read_data(&mut read, 1_000).await.unwrap() else {
            panic!("message expected");
        };
        assert_eq!(message, b"Subject: x\r\n\r\n.leading dot\r\n");
        assert!(matches!(read_line(&mut read, 100).await.unwrap(), Line::Text(l) if l == b"NOOP"));

        let big = format!("{}\r\n.\r\nNOOP\r\n", "y".repeat(900));
        let mut read = BufReader::new(big.as_bytes());
        assert!(matches!(read_data(&mut read, 100).await.unwrap(), Data::TooLarge));
        assert!(matches!(read_line(&mut read, 100).await.unwrap(), Line::Text(l) if l == b"NOOP"));
    }

    #[tokio::test]
    async fn over_long_lines_are_refused_whole() {
        let long = format!("{}\r\nNOOP\r\n", "z".repeat(10_000));
        let mut read = BufReader::with_capacity(64, long.as_bytes());
        assert!(matches!(read_line(&mut read, 100).await.unwrap(), Line::TooLong));
        assert!(matches!(read_line(&mut read, 100).await.unwrap(), Line::Text(l) if l == b"NOOP"));
        assert!(matches!(read_line(&mut read, 100).await.unwrap(), Line::Eof));
    }
}
