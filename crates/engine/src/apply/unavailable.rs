//! Places that stopped answering during an apply (a provider, and the machine
//! it names): nothing more is tried there, as Ansible takes an unreachable host
//! out of the play, and one error per place names what was not attempted.

use infra_syntax::{Code, Diagnostic};

use super::operation::Op;
use super::{Applier, Event};

/// How many addresses an error lists before it counts the rest.
const LISTED: usize = 10;

impl Applier<'_> {
    /// Leaves out an operation whose place stopped answering earlier in this
    /// run: its step fails without another attempt (and another error) that
    /// would only wait for the same timeout.
    pub(super) fn skip_if_unavailable(&mut self, op: &Op) -> bool {
        let Some(address) = op.address() else { return false };
        let location = self.location(op);
        let Some(not_attempted) = self.unavailable.get_mut(&(op.provider.clone(), location.clone())) else {
            return false;
        };
        not_attempted.push(address.clone());
        self.schedule.mark_failed(op.step);
        self.options.observer.event(Event::Skipped { address: address.clone(), location });
        true
    }

    /// One error per place that stopped answering, naming what was not tried there.
    pub(super) fn report_not_attempted(&mut self) {
        for ((provider, location), addresses) in std::mem::take(&mut self.unavailable) {
            if addresses.is_empty() {
                continue;
            }
            let target = location.unwrap_or_else(|| format!("provider `{provider}`"));
            let mut listed = addresses.iter().take(LISTED).map(ToString::to_string).collect::<Vec<_>>().join(", ");
            if addresses.len() > LISTED {
                listed.push_str(&format!(" and {} more", addresses.len() - LISTED));
            }
            let count =
                if addresses.len() == 1 { "1 change".to_string() } else { format!("{} changes", addresses.len()) };
            self.report.errors.push(
                Diagnostic::error(
                    Code::NotAttempted,
                    format!("{count} not attempted after {target} stopped answering: {listed}"),
                )
                .with_help("run `infra apply` again once it answers; what was done is recorded in state"),
            );
        }
    }
}
