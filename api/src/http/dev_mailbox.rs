//! `/dev/mailbox`: the development mail catcher's messages as pages — a list (to, subject,
//! time), one message with its text part (links clickable) and its HTML part (its links, and
//! its source as text: it is never rendered, so a hostile message can run nothing). Mounted only in development mode (a 404 in production); it shows tokens, so it must
//! never be reachable on a production server.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::web::Page;
use super::AppState;
use crate::mail::mailbox::{self, ReceivedMail, KEEP_MESSAGES, MAX_LIST_ROWS};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dev/mailbox", get(list))
        .route("/dev/mailbox/{id}", get(show))
}

struct Row {
    id: i64,
    to: String,
    subject: String,
    received_at: String,
}

#[derive(Template)]
#[template(path = "dev/mailbox.html")]
struct MailboxPage {
    page: Page,
    keep: i64,
    messages: Vec<Row>,
}

/// A piece of the text part: plain text, or an http(s) link.
struct Piece {
    text: String,
    link: bool,
}

struct MailView {
    from: String,
    to: String,
    subject: String,
    received_at: String,
    text: Vec<Piece>,
    html: Option<String>,
    html_links: Vec<String>,
}

#[derive(Template)]
#[template(path = "dev/mail.html")]
struct MailPage {
    page: Page,
    mail: MailView,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// Only messages to this address.
    to: Option<String>,
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dev mailbox page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

fn database_error(e: sqlx::Error) -> Response {
    tracing::warn!(error = %e, "dev mailbox: database");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the mailbox is not available; is the database up?",
    )
        .into_response()
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let rows = match mailbox::list(&state.pool, MAX_LIST_ROWS).await {
        Ok(rows) => rows,
        Err(e) => return database_error(e),
    };
    let messages = rows
        .into_iter()
        .filter(|m| {
            query
                .to
                .as_ref()
                .is_none_or(|to| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
        })
        .map(|m| Row {
            id: m.id,
            to: m.rcpt_to.join(", "),
            subject: m.subject,
            received_at: m.received_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .collect();
    render(&MailboxPage {
        page: Page::bare("Development mailbox"),
        keep: KEEP_MESSAGES,
        messages,
    })
}

async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match mailbox::get(&state.pool, id).await {
        Ok(Some(mail)) => render(&MailPage {
            page: Page::bare("Message"),
            mail: view(mail),
        }),
        Ok(None) => (StatusCode::NOT_FOUND, "no such message").into_response(),
        Err(e) => database_error(e),
    }
}

fn view(mail: ReceivedMail) -> MailView {
    let html_links = mail.html_body.as_deref().map(links_in_html).unwrap_or_default();
    MailView {
        from: mail.mail_from,
        to: mail.rcpt_to.join(", "),
        subject: mail.subject,
        received_at: mail
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text: mail.text_body.as_deref().map(pieces).unwrap_or_default(),
        html: mail.html_body,
        html_links,
    }
}

fn is_link(word: &str) -> bool {
    word.starts_with("https://") || word.starts_with("http://")
}

/// `text` cut into plain runs and http(s) links (a link ends at whitespace, `<`, `>` or `"`).
fn pieces(text: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("http") {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(candidate.len());
        let word = candidate[..end].trim_end_matches(['.', ',', ')', ';']);
        if is_link(word) && word.len() > "https://".len() {
            plain.push_str(&rest[..start]);
            if !plain.is_empty() {
                out.push(Piece {
                    text: std::mem::take(&mut plain),
                    link: false,
                });
            }
            out.push(Piece {
                text: word.to_owned(),
                link: true,
            });
            rest = &candidate[word.len()..];
        } else {
            plain.push_str(&rest[..start + 4]);
            rest = &candidate[4..];
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push(Piece {
            text: plain,
            link: false,
        });
    }
    out
}

/// The http(s) targets of `href="…"` in an HTML part, entity `&amp;` undone, at most 50.
fn links_in_html(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|after| after.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| is_link(href))
        .take(50)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_text_are_cut_out_without_trailing_punctuation() {
        let got = pieces("Open https://x.test/confirm?token=a&b=c. Or not: httpx, http://y.test/z\n");
        let links: Vec<&str> = got.iter().filter(|p| p.link).map(|p| p.text.as_str()).collect();
        assert_eq!(
            links,
            vec!["https://x.test/confirm?token=a&b=c", "http://y.test/z"]
        );
        let joined: String = got.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            joined,
            "Open https://x.test/confirm?token=a&b=c. Or not: httpx, http://y.test/z\n"
        );
    }

    #[test]
    fn only_web_links_are_taken_from_html() {
        let html = r#"<a href="https://x.test/r?a=1&amp;b=2">go</a><a href="javascript:alert(1)">x</a>"#;
        assert_eq!(links_in_html(html), vec!["https://x.test/r?a=1&b=2"]);
    }
}
