//! The Call command service's glue: the Call aggregate as a `Decider`. Its answer (grant,
//! settlement) is read back from the state after each command, so the outcome carries it.

use ringledger_domain::call::{Call, CallCommand, CallError, CallEvent};

use super::Decider;

impl Decider for Call {
    fn decide_command(&self, command: &CallCommand) -> Result<Vec<CallEvent>, CallError> {
        self.decide(command).map(|decision| decision.events)
    }

    fn fold_event(&mut self, event: &CallEvent) {
        self.fold(event);
    }

    fn command_name(command: &CallCommand) -> &'static str {
        command.name()
    }

    const STATE_IN_OUTCOME: bool = true;
}
