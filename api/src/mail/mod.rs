//! Outgoing email: callers build an [`OutgoingEmail`] and [`enqueue`] it (or [`enqueue_in_tx`]
//! inside their own transaction); a durable job on the `mail` queue sends it later with lettre
//! (see `sender`), retrying with backoff and dead-lettering after [`MAX_ATTEMPTS`]. In
//! development `serve` runs the mail [`catcher`], a small real SMTP server that keeps what it
//! receives in `dev_mailbox` for the `/dev/mailbox` pages and the browser tests.
//!
//! Messages carry tokens (confirmation, reset, unlock links): this module must never log a
//! body, and never log an address except masked ([`mask_address`]). Nothing here sends inside
//! a request or holds a transaction open while talking SMTP.

pub mod catcher;
pub mod mailbox;
mod sender;

use ringledger_projections::jobs::{JobKind, JobQueue, NewJob, QueueName};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

pub use sender::{mail_worker_pool, MailQueueSettings, Mailer};

/// The queue mail jobs run on, and the kind of the one job it has.
pub const QUEUE: &str = "mail";
pub const KIND: &str = "mail.send";
/// Attempts before a message is dead-lettered: with the backoff of `sender` (5 s doubling,
/// capped at 10 min) about half an hour of retries.
pub const MAX_ATTEMPTS: i32 = 8;
/// Bounds of one message, checked before it is enqueued (the job payload holds it whole).
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_BODY_BYTES: usize = 24 * 1024;
pub const MAX_ADDRESS_BYTES: usize = 254;

/// One message to one person: a plain-text part and an HTML part with the same content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for OutgoingEmail {
    // Bodies hold tokens and `to` is personal data: never print either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &mask_address(&self.to))
            .field("subject", &self.subject)
            .field("text_bytes", &self.text.len())
            .field("html_bytes", &self.html.len())
            .finish()
    }
}

/// What a mail job's payload holds. The message stays there until finished jobs are pruned
/// (a week): the links in it are single-use and expire within a day, and the jobs table is
/// as private as the identity tables.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MailPayload {
    Send(OutgoingEmail),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email to {to}: {problem}")]
    Invalid { to: String, problem: String },
    #[error("email queue: {0}")]
    Queue(#[from] ringledger_projections::jobs::JobsError),
}

/// Enqueues `email` in a statement of its own and wakes the mail workers.
pub async fn enqueue(pool: &PgPool, email: &OutgoingEmail) -> anyhow::Result<()> {
    let job = mail_job(email)?;
    let enqueued = JobQueue::new(pool.clone())
        .enqueue(&job)
        .await
        .map_err(MailError::from)?;
    tracing::info!(job_id = %enqueued.id, to = %mask_address(&email.to), "email enqueued");
    Ok(())
}

/// Enqueues `email` on `conn`, typically inside the caller's transaction: it is sent if and
/// only if that transaction commits. Workers find it by polling (within a second).
pub async fn enqueue_in_tx(conn: &mut PgConnection, email: &OutgoingEmail) -> anyhow::Result<()> {
    let job = mail_job(email)?;
    let enqueued = JobQueue::enqueue_in_tx(conn, &job)
        .await
        .map_err(MailError::from)?;
    tracing::info!(job_id = %enqueued.id, to = %mask_address(&email.to), "email enqueued");
    Ok(())
}

/// The job that sends `email`, after checking it fits the bounds above.
pub fn mail_job(email: &OutgoingEmail) -> Result<NewJob, MailError> {
    check(email)?;
    let queue = QueueName::parse(QUEUE)?;
    let kind = JobKind::parse(KIND)?;
    let payload = serde_json::to_value(MailPayload::Send(email.clone())).map_err(|e| MailError::Invalid {
        to: mask_address(&email.to),
        problem: format!("cannot encode the message: {e}"),
    })?;
    Ok(NewJob::new(queue, kind, payload).with_max_attempts(MAX_ATTEMPTS))
}

fn check(email: &OutgoingEmail) -> Result<(), MailError> {
    let invalid = |problem: String| MailError::Invalid {
        to: mask_address(&email.to),
        problem,
    };
    if email.to.len() > MAX_ADDRESS_BYTES || email.to.parse::<lettre::Address>().is_err() {
        return Err(invalid("the recipient is not a valid email address".to_owned()));
    }
    let subject_chars = email.subject.chars().count();
    if subject_chars == 0 || subject_chars > MAX_SUBJECT_CHARS || email.subject.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "the subject must be 1 to {MAX_SUBJECT_CHARS} characters on one line"
        )));
    }
    if email.text.len() > MAX_BODY_BYTES || email.html.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "text and HTML parts may be at most {MAX_BODY_BYTES} bytes each (got {} and {})",
            email.text.len(),
            email.html.len()
        )));
    }
    Ok(())
}

/// `alice@example.com` -> `a***@example.com`: enough to tell messages apart in a log, not
/// enough to read the address.
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            let domain: String = domain.chars().take(64).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every `local@domain` in it masked (SMTP replies often quote the recipient).
pub fn mask_addresses_in(text: &str) -> String {
    text.split_inclusive(|c: char| {
        c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ',' | ';' | '(' | ')')
    })
    .map(|piece| {
        let trimmed = piece.trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ',' | ';' | '(' | ')')
        });
        if trimmed.contains('@') {
            format!("{}{}", mask_address(trimmed), &piece[trimmed.len()..])
        } else {
            piece.to_owned()
        }
    })
    .collect()
}

/// Whether an SMTP URL carries a password (`scheme://user:pass@host`).
pub fn smtp_url_has_password(url: &str) -> bool {
    userinfo(url).is_some_and(|info| info.contains(':'))
}

/// The URL with any password replaced by `***`, for error messages.
pub fn redact_smtp_url(url: &str) -> String {
    match (url.split_once("://"), userinfo(url)) {
        (Some((scheme, rest)), Some(info)) => {
            let user = info.split(':').next().unwrap_or_default();
            let host = &rest[info.len() + 1..];
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// The `user[:password]` part of `scheme://user[:password]@host…`, if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit_once('@').map(|(info, _)| info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to: "alice@example.com".to_owned(),
            subject: "Confirm your email".to_owned(),
            text: "https://x/confirm?token=secret".to_owned(),
            html: "<a href=\"https://x/confirm?token=secret\">confirm</a>".to_owned(),
        }
    }

    #[test]
    fn addresses_are_masked_and_bodies_never_printed() {
        assert_eq!(mask_address("alice@example.com"), "a***@example.com");
        assert_eq!(mask_address("nonsense"), "***");
        let printed = format!("{:?}", email());
        assert!(
            !printed.contains("alice") && !printed.contains("secret"),
            "{printed}"
        );
        assert_eq!(
            mask_addresses_in("550 5.1.1 <bob@example.org>: user unknown"),
            "550 5.1.1 <b***@example.org>: user unknown"
        );
    }

    #[test]
    fn bad_messages_are_refused_before_the_queue() {
        assert!(mail_job(&email()).is_ok());
        let mut bad = email();
        bad.to = "not an address".to_owned();
        assert!(mail_job(&bad).is_err());
        let mut bad = email();
        bad.subject = "two\nlines".to_owned();
        assert!(mail_job(&bad).is_err());
        let mut bad = email();
        bad.html = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(mail_job(&bad).is_err());
        let job = mail_job(&email()).unwrap();
        assert_eq!((job.queue.as_str(), job.max_attempts), (QUEUE, MAX_ATTEMPTS));
    }

    #[test]
    fn smtp_passwords_are_detected_and_redacted() {
        assert!(smtp_url_has_password("smtp://u:p@h:587"));
        assert!(!smtp_url_has_password("smtp://u@h:587"));
        assert!(!smtp_url_has_password("smtp://127.0.0.1:2525"));
        assert_eq!(
            redact_smtp_url("smtps://u:hunter2@h:465/x"),
            "smtps://u:***@h:465/x"
        );
    }
}
