//! Stripe's minor units: amounts cross the Stripe boundary as integers of the currency's
//! smallest unit (cents for USD, yen for JPY, fils for BHD). Which exponent a currency has is
//! ISO 4217 data as Stripe applies it; converting is exact or refused, never rounded.

use crate::money::{Currency, Money, MoneyError, MICROS_PER_UNIT};

/// Stripe's zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF",
    "XPF",
];
/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Digits after the decimal point of `currency`'s minor unit.
pub fn digits(currency: Currency) -> u32 {
    let code = currency.as_str();
    if ZERO_DECIMAL.contains(&code) {
        0
    } else if THREE_DECIMAL.contains(&code) {
        3
    } else {
        2
    }
}

/// Micro-units in one minor unit of `currency`.
pub fn micros_per_minor(currency: Currency) -> i64 {
    MICROS_PER_UNIT / 10_i64.pow(digits(currency))
}

/// `money` in minor units, or `None` when it is not a whole number of them.
pub fn to_minor(money: Money) -> Option<i64> {
    let per = micros_per_minor(money.currency());
    (money.micros() % per == 0).then(|| money.micros() / per)
}

/// An amount Stripe gives in minor units.
pub fn from_minor(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
    minor
        .checked_mul(micros_per_minor(currency))
        .map(|micros| Money::from_micros(micros, currency))
        .ok_or(MoneyError::Overflow)
}

/// For people: the amount with the currency's minor digits, rounded half up, e.g. "10.00 USD".
pub fn display(money: Money) -> String {
    let digits = digits(money.currency());
    let per = micros_per_minor(money.currency());
    let micros = i128::from(money.micros());
    let half = i128::from(per / 2);
    let minor = if micros >= 0 {
        (micros + half) / i128::from(per)
    } else {
        (micros - half) / i128::from(per)
    };
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10_u128.pow(digits);
    let amount = if digits == 0 {
        abs.to_string()
    } else {
        format!("{}.{:0width$}", abs / scale, abs % scale, width = digits as usize)
    };
    format!("{sign}{amount} {}", money.currency())
}
