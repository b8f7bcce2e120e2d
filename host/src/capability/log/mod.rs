//! `log`: guest log lines into the host's log. Every module has it, and it needs no backend
//! and no flag, so it has a room (its import) but no line in the capability table.

mod import;

#[cfg(test)]
mod tests;
