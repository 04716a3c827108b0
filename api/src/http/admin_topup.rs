//! `/admin/top-up`: the top-up offers in force (with their version) and a form to replace them.
//! Each save is a `TopUpOffersChanged` event with the next version; purchases already made keep
//! the version they name. One tier per line: `id price bonus%`, e.g. `25 25.00 5`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{middleware, Extension, Form, Router};
use ringledger_domain::topup::{CustomRange, Offers, Tier};
use ringledger_domain::{ActorId, Currency, Money};
use serde::Deserialize;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::sessions::Flash;
use crate::checkout::CheckoutError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/top-up", get(show).post(save))
        .route_layer(middleware::from_fn(web::admin_only))
}

#[derive(Template)]
#[template(path = "admin/top_up.html")]
struct TopUpPage {
    page: Page,
    version: u32,
    currency: String,
    tiers: String,
    custom_min: String,
    custom_max: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct OffersForm {
    #[serde(default)]
    currency: String,
    #[serde(default)]
    tiers: String,
    #[serde(default)]
    custom_min: String,
    #[serde(default)]
    custom_max: String,
}

const MAX_LINES: usize = 50;

/// The form's text for `offers`.
fn form_for(offers: Option<&Offers>) -> OffersForm {
    let Some(o) = offers else {
        return OffersForm {
            currency: String::new(),
            tiers: String::new(),
            custom_min: String::new(),
            custom_max: String::new(),
        };
    };
    let tiers = o
        .tiers
        .iter()
        .map(|t| format!("{} {} {}", t.id, trim(t.price), percent(t.bonus_bps)))
        .collect::<Vec<_>>()
        .join("\n");
    OffersForm {
        currency: o.currency.as_str().to_owned(),
        tiers,
        custom_min: o.custom.as_ref().map(|c| trim(c.min)).unwrap_or_default(),
        custom_max: o.custom.as_ref().map(|c| trim(c.max)).unwrap_or_default(),
    }
}

/// `25.000000` -> `25`, `12.500000` -> `12.5`.
fn trim(m: Money) -> String {
    let s = m.amount_string();
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn percent(bps: u32) -> String {
    if bps % 100 == 0 {
        (bps / 100).to_string()
    } else {
        format!("{}.{:02}", bps / 100, bps % 100)
            .trim_end_matches('0')
            .to_owned()
    }
}

/// Basis points from a percentage with at most two decimals ("5", "7.5", "12.25").
fn parse_percent(text: &str) -> Option<u32> {
    let text = text.trim_end_matches('%');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// Turns the form into offers, or says which line is wrong.
fn parse(form: &OffersForm) -> Result<Offers, String> {
    let currency = Currency::parse(form.currency.trim()).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = form
        .tiers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_LINES {
        return Err(format!("at most {MAX_LINES} tier lines"));
    }
    let mut tiers = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, price, bonus) = match fields.as_slice() {
            [id, price] => (*id, *price, "0"),
            [id, price, bonus] => (*id, *price, *bonus),
            _ => {
                return Err(format!(
                    "tier line {}: write `id price bonus%`, e.g. `25 25.00 5`",
                    n + 1
                ))
            }
        };
        let price = Money::parse(price, currency).map_err(|e| format!("tier line {}: {e}", n + 1))?;
        let bonus_bps = parse_percent(bonus).ok_or_else(|| {
            format!(
                "tier line {}: bonus `{bonus}` is not a percentage such as 5 or 7.5",
                n + 1
            )
        })?;
        tiers.push(Tier {
            id: id.to_owned(),
            price,
            bonus_bps,
        });
    }
    let custom = match (form.custom_min.trim(), form.custom_max.trim()) {
        ("", "") => None,
        (min, max) => Some(CustomRange {
            min: Money::parse(min, currency).map_err(|e| format!("custom minimum: {e}"))?,
            max: Money::parse(max, currency).map_err(|e| format!("custom maximum: {e}"))?,
        }),
    };
    Ok(Offers {
        currency,
        tiers,
        custom,
    })
}

async fn render(
    state: &AppState,
    ctx: &Ctx,
    form: Option<OffersForm>,
    error: Option<String>,
) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let current = state
        .checkout
        .offers()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let form = form.unwrap_or_else(|| form_for(current.offers()));
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let t = TopUpPage {
        page: web::page(state, ctx, session, "Top-up offers").await?,
        version: current.version(),
        currency: form.currency,
        tiers: form.tiers,
        custom_min: form.custom_min,
        custom_max: form.custom_max,
        error,
    };
    web::html(status, &t, None)
}

async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    render(&state, &ctx, None, None).await
}

async fn save(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<OffersForm>,
) -> Result<Response, Error> {
    let actor = ctx
        .user
        .as_ref()
        .map(|u| ActorId(u.id.0))
        .ok_or(Error::Forbidden)?;
    let offers = match parse(&form) {
        Ok(o) => o,
        Err(message) => return render(&state, &ctx, Some(form), Some(message)).await,
    };
    match state.checkout.set_offers(offers, actor).await {
        Ok(version) => {
            tracing::info!(actor = %actor, version, "top-up offers changed");
            let flash = Flash::notice(format!("Saved: the offers are now version {version}."));
            web::redirect_with_flash(&state, &ctx, "/admin/top-up", flash).await
        }
        Err(CheckoutError::Offers(e)) => render(&state, &ctx, Some(form), Some(e.to_string())).await,
        Err(e) => Err(Error::Internal(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_the_offers_and_names_bad_lines() {
        let offers = Offers::defaults(Currency::USD).unwrap();
        let form = form_for(Some(&offers));
        assert_eq!(form.tiers, "5 5 0\n10 10 0\n25 25 5\n50 50 10");
        assert_eq!(parse(&form).unwrap(), offers);
        assert_eq!(parse_percent("7.5"), Some(750));
        assert_eq!(parse_percent("12.25%"), Some(1_225));
        assert_eq!(parse_percent("1.234"), None);
        let bad = OffersForm {
            tiers: "10 10,00".into(),
            ..form_for(Some(&offers))
        };
        assert!(parse(&bad).unwrap_err().starts_with("tier line 1:"));
    }
}
