//! Event wake: a task declares (in `describe()`, contract 0.2.0) which records wake it; when
//! any module's record matching one of them is accepted by core through the host, the task
//! runs at once instead of at its next interval. Intervals stay the fallback.
//!
//! Why it is shaped this way:
//! - Matching happens when core said yes — for a scheduled cycle's records, when the
//!   outbox delivers them after the cycle committed (outbox/sender.rs): a refused record, or
//!   one of a failed cycle, wakes nobody, and no module sees another module's records except
//!   through core, as before.
//! - Wakes coalesce per task into one pending flag: however many records arrive while a task
//!   runs or waits, it runs once more, not once per record. Records that arrive before that
//!   cycle starts are in core by then, so the cycle sees them all.
//! - A woken task waits for its wakes to settle: 250 ms without a new one, at most 5 s
//!   after the first. Records reach core one by one at core's pace, so a burst of them
//!   (a large collect) makes one cycle of the subscriber instead of one per floor.
//! - A floor per task (default 1 s between starts) bounds how often wakes can run it, and a
//!   task is never woken by its own records, so no module can spin itself or a neighbour
//!   into a busy loop; two tasks waking each other settle at one cycle per floor each.
//!
//! `rules.rs` is what a task declares (checked when a module loads), `bus.rs` the
//! subscriptions and the per-task signal the scheduler waits on. The room sits low: the
//! runtime reads rules from `describe()`, the outbox publishes what core took, the
//! scheduler waits — and none of them is imported here.

pub mod bus;
pub mod rules;

pub use bus::{Due, TaskWake, WakeBus, FLOOR, MAX_SETTLE, SETTLE};
pub use rules::{validate, FieldTest, WakeRule};

#[cfg(test)]
mod tests;
