//! The account emails (confirm, reset, unlock, "you already have an account"), each a plain
//! text and an HTML template under `api/templates/emails/`, queued through the durable mail
//! job. Links are absolute, built from `public_url`. Nothing here logs a link or an address.

use askama::Template;
use sqlx::PgPool;

use crate::mail::{self, OutgoingEmail};

use super::Email;

#[derive(Template)]
#[template(path = "emails/action.txt")]
struct ActionText<'a> {
    greeting: &'a str,
    body: &'a str,
    action: &'a str,
    link: &'a str,
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "emails/action.html")]
struct ActionHtml<'a> {
    greeting: &'a str,
    body: &'a str,
    action: &'a str,
    link: &'a str,
    footer: &'a str,
}

/// Which account email.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Confirm,
    Reset,
    Unlock,
    AlreadyRegistered,
}

struct Wording {
    subject: &'static str,
    body: &'static str,
    action: &'static str,
    footer: &'static str,
}

fn wording(kind: Kind) -> Wording {
    match kind {
        Kind::Confirm => Wording {
            subject: "Confirm your email for RingLedger",
            body: "Welcome to RingLedger. Confirm your email address to open your account.",
            action: "Confirm my email",
            footer: "The link works once and expires in 24 hours. If you did not sign up, ignore this email.",
        },
        Kind::Reset => Wording {
            subject: "Reset your RingLedger password",
            body: "Someone (hopefully you) asked to reset the password of your RingLedger account.",
            action: "Choose a new password",
            footer: "The link works once and expires in an hour. If you did not ask, ignore this email: your password stays as it is.",
        },
        Kind::Unlock => Wording {
            subject: "Your RingLedger account was locked",
            body: "Your account was locked after too many failed sign-in attempts. It unlocks by itself after a while, or now with this link.",
            action: "Unlock my account",
            footer: "If these attempts were not yours, reset your password after unlocking.",
        },
        Kind::AlreadyRegistered => Wording {
            subject: "You already have a RingLedger account",
            body: "Someone tried to sign up with this email address, but it already has an account.",
            action: "Sign in",
            footer: "Forgot your password? Use \"Forgot your password?\" on the sign-in page. If this was not you, ignore this email.",
        },
    }
}

/// Renders the email for `kind` with `link` (an absolute URL).
pub fn render(kind: Kind, to: &Email, link: &str) -> anyhow::Result<OutgoingEmail> {
    let w = wording(kind);
    let greeting = "Hello,";
    let text = ActionText {
        greeting,
        body: w.body,
        action: w.action,
        link,
        footer: w.footer,
    }
    .render()?;
    let html = ActionHtml {
        greeting,
        body: w.body,
        action: w.action,
        link,
        footer: w.footer,
    }
    .render()?;
    Ok(OutgoingEmail {
        to: to.as_str().to_owned(),
        subject: w.subject.to_owned(),
        text,
        html,
    })
}

/// Renders and queues the email (durable job with retries).
pub async fn send(pool: &PgPool, kind: Kind, to: &Email, link: &str) -> anyhow::Result<()> {
    let email = render(kind, to, link)?;
    mail::enqueue(pool, &email).await?;
    tracing::info!(kind = ?kind, to = %to.masked(), "account email queued");
    Ok(())
}
