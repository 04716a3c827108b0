//! The one error type handlers return, mapped to status codes and a plain error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::service::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("page not found")]
    NotFound,
    #[error("you do not have access to this page")]
    Forbidden,
    #[error("this form has expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error("too many attempts; wait a little and try again")]
    TooManyRequests,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Error {
        match e {
            AuthError::RateLimited => Error::TooManyRequests,
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        Error::Internal(e.into())
    }
}

impl From<askama::Error> for Error {
    fn from(e: askama::Error) -> Error {
        Error::Internal(e.into())
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Forbidden | Error::Csrf => StatusCode::FORBIDDEN,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Error::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                "Something went wrong on our side. Try again in a moment.".to_owned()
            }
            other => format!(
                "{}{}",
                other.to_string()[..1].to_uppercase(),
                &other.to_string()[1..]
            ),
        };
        let page = super::web::ErrorPage {
            page: super::web::Page::bare(status.canonical_reason().unwrap_or("Error")),
            status: status.as_u16(),
            message,
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}
