//! Sending: the [`Mailer`] (lettre's async SMTP transport over tokio and rustls, built from
//! `smtp_url`, `smtp_password` and `mail_from`) and the worker pool of the `mail` queue that
//! runs one job per message. A permanent SMTP refusal (5xx) dead-letters the job at once;
//! anything else is retried with backoff. Delivery is at-least-once: a worker that loses its
//! lease mid-send may send a message twice (harmless for our single-use links). Errors kept on
//! the job or logged have addresses masked and never hold a body.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use ringledger_projections::jobs::{
    Backoff, ClaimedJob, JobError, JobKind, JobQueue, QueueConfig, QueueName, Registry, WorkerPool,
};

use super::{mask_address, mask_addresses_in, MailPayload, OutgoingEmail, KIND, QUEUE};
use crate::config::Secret;

/// One SMTP conversation may take this long before the attempt counts as failed.
const SMTP_TIMEOUT_SECS: u64 = 30;

/// Sends messages through one SMTP server. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://host:port`, `smtp://host?tls=required`,
    /// `smtps://user@host`), logging in as the URL's user with `password` when one is given.
    pub fn new(smtp_url: &str, password: Option<&Secret>, from: &str) -> anyhow::Result<Mailer> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from `{from}` is not a mailbox (`Name <user@host>`): {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url).map_err(|e| {
            anyhow::anyhow!(
                "smtp_url `{}` is not usable: {e}; use smtp://host:port, add ?tls=required for STARTTLS, or smtps://",
                super::redact_smtp_url(smtp_url)
            )
        })?;
        if let Some(password) = password {
            let user = smtp_user(smtp_url).ok_or_else(|| {
                anyhow::anyhow!(
                    "RINGLEDGER_SMTP_PASSWORD is set but smtp_url names no user (smtp://USER@host)"
                )
            })?;
            builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
        }
        let transport = builder
            .timeout(Some(Duration::from_secs(SMTP_TIMEOUT_SECS)))
            .build();
        Ok(Mailer { transport, from })
    }

    /// Sends `email` once. The error says whether trying again could help.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), JobError> {
        let message = self.message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = mask_addresses_in(&e.to_string());
                if e.is_permanent() {
                    Err(JobError::Permanent(format!(
                        "the SMTP server refused the message: {text}"
                    )))
                } else {
                    Err(JobError::Retry(format!("SMTP: {text}")))
                }
            }
        }
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, JobError> {
        let to: Mailbox = email.to.parse().map_err(|_| {
            JobError::Permanent(format!(
                "recipient {} is not a valid address",
                mask_address(&email.to)
            ))
        })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| JobError::Permanent(format!("cannot build the message: {e}")))
    }
}

/// The user name in `scheme://user@host`, percent-decoding nothing (keep it plain).
fn smtp_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (user, _) = authority.rsplit_once('@')?;
    (!user.is_empty()).then(|| user.to_owned())
}

/// How the `mail` queue's pool runs; tests shorten the backoff.
#[derive(Debug, Clone)]
pub struct MailQueueSettings {
    pub concurrency: usize,
    pub backoff: Backoff,
    pub poll_ms: u64,
}

impl Default for MailQueueSettings {
    fn default() -> Self {
        MailQueueSettings {
            concurrency: 2,
            backoff: Backoff {
                base_ms: 5_000,
                cap_ms: 600_000,
                jitter_percent: 25,
            },
            poll_ms: 1_000,
        }
    }
}

/// Starts the worker pool of the `mail` queue, sending through `mailer`.
pub fn mail_worker_pool(
    jobs: JobQueue,
    mailer: Mailer,
    settings: MailQueueSettings,
) -> anyhow::Result<WorkerPool> {
    let queue = QueueName::parse(QUEUE)?;
    let kind = JobKind::parse(KIND)?;
    let registry = Registry::new().register_fn(kind, move |job| {
        let mailer = mailer.clone();
        async move { run(&mailer, &job).await }
    });
    let config = QueueConfig {
        concurrency: settings.concurrency,
        poll_ms: settings.poll_ms,
        backoff: settings.backoff,
        job_timeout_ms: (SMTP_TIMEOUT_SECS + 30) * 1_000,
        ..QueueConfig::default()
    };
    Ok(WorkerPool::spawn(jobs, queue, registry, config)?)
}

async fn run(mailer: &Mailer, job: &ClaimedJob) -> Result<(), JobError> {
    let MailPayload::Send(email) = job.payload_as::<MailPayload>()?;
    let to = mask_address(&email.to);
    if let Err(e) = mailer.send(&email).await {
        tracing::warn!(job_id = %job.id, attempt = job.attempts, %to, error = %e, "email not sent");
        return Err(e);
    }
    tracing::info!(job_id = %job.id, attempt = job.attempts, %to, "email sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_multipart_message_from_the_configured_sender() {
        let mailer = Mailer::new("smtp://127.0.0.1:2525", None, "RingLedger <no-reply@example.com>").unwrap();
        let email = OutgoingEmail {
            to: "alice@example.com".to_owned(),
            subject: "Hello".to_owned(),
            text: "plain".to_owned(),
            html: "<p>rich</p>".to_owned(),
        };
        let raw = String::from_utf8(mailer.message(&email).unwrap().formatted()).unwrap();
        assert!(raw.contains("From: RingLedger <no-reply@example.com>"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
    }

    #[test]
    fn refuses_bad_configuration_with_a_way_out() {
        assert!(Mailer::new("smtp://127.0.0.1:2525", None, "not a mailbox").is_err());
        let err = Mailer::new("gopher://x", None, "a@b.c")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("smtp://host:port"), "{err}");
        let pw = Secret::new("pw");
        assert!(Mailer::new("smtp://127.0.0.1:2525", Some(&pw), "a@b.c").is_err());
        assert!(Mailer::new("smtp://u@127.0.0.1:2525", Some(&pw), "a@b.c").is_ok());
        assert_eq!(smtp_user("smtps://mailer@h:465"), Some("mailer".to_owned()));
    }
}
