//! The Payment aggregate as a `Decider`. The state after each command comes back in the
//! outcome: the process manager plans the Account steps from it without reloading the stream.

use ringledger_domain::payment::{Payment, PaymentCommand, PaymentError, PaymentEvent};

use super::Decider;

impl Decider for Payment {
    fn decide_command(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &PaymentEvent) {
        self.fold(event);
    }

    fn command_name(command: &PaymentCommand) -> &'static str {
        command.name()
    }

    const STATE_IN_OUTCOME: bool = true;
}
