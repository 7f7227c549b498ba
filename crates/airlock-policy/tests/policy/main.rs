//! airlock-policy: evaluation, validation messages, identities and reloading.

mod diagnostics;
mod evaluate;
mod identities;
mod reload;
mod support;
