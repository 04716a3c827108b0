//! Helpers for the sign-in tests: the app on port 0 against its own database, a browser-like
//! client that keeps one session cookie and never follows redirects, and the account emails
//! read back from the durable mail queue.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use ringledger_api::auth::AuthConfig;
use ringledger_api::config::{Config, Secret};
use ringledger_api::startup::Application;
use ringledger_tests::TestDb;
use sqlx::PgPool;

pub const PASSWORD: &str = "violet staple orbit 42";

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub auth: ringledger_api::auth::AuthService,
    pub checkout: ringledger_api::checkout::CheckoutService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start(auth: AuthConfig) -> TestApp {
        Self::start_with(auth, |_| {}).await
    }

    /// The app with `customize` applied to its configuration (e.g. Stripe settings).
    pub async fn start_with(auth: AuthConfig, customize: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::create().await.expect("test database");
        let mut config = Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            database_url: Some(Secret::new(db.url.clone())),
            database_max_connections: 4,
            auth,
            ..Config::default()
        };
        customize(&mut config);
        let app = Application::build(config).await.expect("application builds");
        let base = format!("http://{}", app.local_addr());
        let auth = app.state().auth.clone();
        let checkout = app.state().checkout.clone();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stop_rx.await;
        }));
        TestApp {
            base,
            pool: db.pool.clone(),
            auth,
            checkout,
            stop: Some(stop),
            server: Some(server),
            db,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// The latest account email to `to` whose text holds `path` (e.g. "/confirm?token="),
    /// and the token in its link.
    pub async fn token_from_email(&self, to: &str, path: &str) -> String {
        let pool = self.pool.clone();
        let (to, path) = (to.to_owned(), path.to_owned());
        ringledger_tests::eventually(Duration::from_secs(10), || {
            let (pool, to, path) = (pool.clone(), to.clone(), path.clone());
            async move {
                let payloads: Vec<String> = sqlx::query_scalar(
                    "SELECT payload::text FROM jobs WHERE queue = 'mail' ORDER BY id DESC",
                )
                .fetch_all(&pool)
                .await
                .ok()?;
                payloads.into_iter().filter(|p| p.contains(&to)).find_map(|p| {
                    let start = p.find(&path)? + path.len();
                    let token: String = p[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    (!token.is_empty()).then_some(token)
                })
            }
        })
        .await
        .expect("the email arrived in the mail queue")
    }

    pub async fn mail_count(&self, to: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE queue = 'mail' AND payload::text LIKE '%' || $1 || '%'",
        )
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// Signs up and confirms `email`; returns the browser (not signed in).
    pub async fn confirmed_user(&self, email: &str) -> Browser {
        let mut b = self.browser();
        let res = b
            .submit("/signup", "/signup", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let token = self.token_from_email(email, "/confirm?token=").await;
        let res = b.get(&format!("/confirm?token={token}")).await;
        assert_eq!(res.location(), Some("/signin"));
        b
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }
}

/// A client holding one session cookie, like a browser tab.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

/// The value of the hidden csrf_token field in a page.
pub fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    Some(body[at..].chars().take_while(|c| *c != '"').collect())
}

/// The text of the element with `data-testid="{id}"`.
pub fn testid(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("data-testid=\"{id}\""))?;
    let open = body[at..].find('>')? + at + 1;
    let close = body[open..].find("</")? + open;
    Some(body[open..close].trim().to_owned())
}

impl Browser {
    fn absorb(&mut self, headers: &HeaderMap) {
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap_or_default();
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((_, v)) = pair.split_once('=') {
                self.cookie = (!v.is_empty()).then(|| pair.to_owned());
            }
        }
    }

    async fn finish(&mut self, res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        self.absorb(&headers);
        let body = res.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.expect("GET answers");
        self.finish(res).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(fields);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.expect("POST answers");
        self.finish(res).await
    }

    /// GETs `page`, then posts its form to `action` with the page's CSRF token.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let form = self.get(page).await;
        assert_eq!(form.status, StatusCode::OK, "GET {page}: {}", form.body);
        let token = csrf_in(&form.body).expect("the page has a CSRF token");
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        self.submit("/signin", "/signin", &[("email", email), ("password", password)])
            .await
    }
}
