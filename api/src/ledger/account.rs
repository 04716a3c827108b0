//! The Account command service: typed ids in, `AccountCommand`s through the ledger.

use std::sync::Arc;

use ringledger_domain::account::{Account, AccountCommand, AccountError, AccountEvent};
use ringledger_domain::AccountId;

use super::{Answer, Decider, Envelope, Ledger, LedgerConfig};
use crate::store::EventStore;

impl Decider for Account {
    fn decide_command(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &AccountEvent) {
        self.fold(event);
    }

    fn command_name(command: &AccountCommand) -> &'static str {
        command.name()
    }
}

/// Runs Account commands. Cheap to clone.
pub struct AccountService<S: EventStore> {
    ledger: Ledger<Account, S>,
}

impl<S: EventStore> Clone for AccountService<S> {
    fn clone(&self) -> Self {
        AccountService {
            ledger: self.ledger.clone(),
        }
    }
}

impl<S: EventStore> AccountService<S> {
    pub fn new(store: Arc<S>, config: LedgerConfig) -> Self {
        AccountService {
            ledger: Ledger::new(store, config),
        }
    }

    pub fn ledger(&self) -> &Ledger<Account, S> {
        &self.ledger
    }

    pub async fn execute(&self, account: AccountId, envelope: Envelope<AccountCommand>) -> Answer<Account> {
        self.ledger.execute(&account.to_string(), envelope).await
    }
}
