//! The purchase receipt: an email through the durable mail queue, keyed by the payment intent
//! so a repeat of the step (a retried job, a repeat delivery) sends it once. The email names
//! the Stripe ids a person or support needs; it never carries card data (we have none).

use ringledger_domain::{AccountId, CheckoutSessionId, Money, PaymentId};
use sqlx::PgPool;

use crate::mail::{mail_job, OutgoingEmail};
use ringledger_projections::jobs::JobQueue;

/// An amount for people: the currency's own decimals (`10.50 USD`), exact (the amounts here
/// come from Stripe's minor units).
pub fn display(amount: Money) -> String {
    let exponent = amount.currency().minor_exponent();
    let per_minor = 10i64.pow(6 - exponent);
    let minor = amount.micros() / per_minor;
    let unit = 10i64.pow(exponent);
    if exponent == 0 {
        format!("{minor} {}", amount.currency())
    } else {
        format!(
            "{}.{:0width$} {}",
            minor / unit,
            (minor % unit).abs(),
            amount.currency(),
            width = exponent as usize
        )
    }
}

pub(super) async fn enqueue(
    pool: &PgPool,
    account: AccountId,
    payment: &PaymentId,
    session: Option<&CheckoutSessionId>,
    paid: Money,
    bonus: Money,
) -> anyhow::Result<()> {
    let email: Option<Option<String>> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(account.0)
        .fetch_optional(pool)
        .await?;
    // No person (a service account) or an erased one: the statement line is the receipt.
    let Some(Some(to)) = email else {
        return Ok(());
    };
    let total = paid.checked_add(bonus)?;
    let session_line = session
        .map(|s| format!("Checkout session: {s}\n"))
        .unwrap_or_default();
    let bonus_line = if bonus.is_positive() {
        format!("Bonus credit: {}\n", display(bonus))
    } else {
        String::new()
    };
    let text = format!(
        "Thank you for your top-up.\n\nPaid: {}\n{bonus_line}Credit added: {}\n\nPayment: {payment}\n{session_line}\n\
         This payment appears on your statement with the same payment id.\n",
        display(paid),
        display(total),
    );
    // Only ids and amounts go into the HTML: nothing there needs escaping beyond these.
    let html = format!(
        "<p>Thank you for your top-up.</p><table><tr><th>Paid</th><td>{}</td></tr>{}<tr><th>Credit added</th><td>{}</td></tr>\
         <tr><th>Payment</th><td>{payment}</td></tr>{}</table>\
         <p>This payment appears on your statement with the same payment id.</p>",
        display(paid),
        if bonus.is_positive() {
            format!("<tr><th>Bonus credit</th><td>{}</td></tr>", display(bonus))
        } else {
            String::new()
        },
        display(total),
        session.map(|s| format!("<tr><th>Checkout session</th><td>{s}</td></tr>")).unwrap_or_default(),
    );
    let email = OutgoingEmail {
        to,
        subject: format!("Receipt: {} of RingLedger credit", display(total)),
        text,
        html,
    };
    let job = mail_job(&email)?.with_idempotency_key(format!("receipt:{payment}"));
    JobQueue::new(pool.clone()).enqueue(&job).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringledger_domain::Currency;

    #[test]
    fn amounts_show_the_currencys_own_decimals() {
        assert_eq!(
            display(Money::from_micros(10_500_000, Currency::USD)),
            "10.50 USD"
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(display(Money::from_micros(500_000_000, jpy)), "500 JPY");
    }
}
