//! What the capability rooms have in common: the cycle's shared context (context.rs) and
//! the steps every import takes (import.rs). The clients they call live in `backend/`.

pub mod context;
pub(crate) mod import;
