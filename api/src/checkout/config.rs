//! `[checkout]` configuration: the currency the launch offers are set in, and the product
//! name customers see on the payment page.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckoutConfig {
    /// ISO code of the default offers, used once on a fresh database; admins change offers
    /// (and their currency) at /admin/top-up.
    pub currency: String,
    /// The line item's name on Stripe's payment page and receipt.
    pub product_name: String,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        CheckoutConfig {
            currency: "USD".to_owned(),
            product_name: "RingLedger calling credit".to_owned(),
        }
    }
}
