//! How a return value says the call went, by autoref specialisation: the macro calls
//! `(&Classify(&ret)).__instrument_outcome()` with these three traits in scope; the
//! `Result` and `Option` impls take the receiver as it is, the catch-all only after one
//! more auto-reference, so it is chosen only when neither of the others applies.
//!
//! ```
//! use instrument_core::work::{Classify, Outcome, OptionOutcome as _, PlainOutcome as _, ResultOutcome as _};
//!
//! let failed: Result<(), &str> = Err("no such workflow");
//! assert_eq!((&Classify(&failed)).__instrument_outcome(), Outcome::Failed("no such workflow".into()));
//! assert_eq!((&Classify(&None::<u8>)).__instrument_outcome(), Outcome::Failed("returned None".into()));
//! assert_eq!((&Classify(&42)).__instrument_outcome(), Outcome::Completed);
//! ```

use std::fmt::Display;

/// How a call ended, as its return value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok`, `Some` or any other value.
    Completed,
    /// `Err(e)` (with `e`'s `Display` text), `None`, or a panic; the text is not yet
    /// redacted.
    Failed(String),
}

/// The return value being classified.
pub struct Classify<'a, T>(pub &'a T);

/// `Result<T, E: Display>`: `Err` fails with `E`'s text.
pub trait ResultOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T, E: Display> ResultOutcome for Classify<'_, Result<T, E>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Completed,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// `Option<T>`: `None` fails.
pub trait OptionOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T> OptionOutcome for Classify<'_, Option<T>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Some(_) => Outcome::Completed,
            None => Outcome::Failed("returned None".to_owned()),
        }
    }
}

/// Any other value completes.
pub trait PlainOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T> PlainOutcome for &Classify<'_, T> {
    fn __instrument_outcome(&self) -> Outcome {
        Outcome::Completed
    }
}
