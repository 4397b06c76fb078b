//! How a return value says the call went, by autoref specialisation: the macro calls
//! `(&&Classify(&ret)).__instrument_outcome()` with these traits in scope. Method lookup
//! tries the receiver's types from the most to the least referenced: a `Result` whose
//! error has an [`ErrorType`] first (`TypedOutcome`, on `&Classify`), then any `Result`
//! or `Option` (`ResultOutcome`, `OptionOutcome`, on `Classify`), then anything
//! (`PlainOutcome`, on `Classify` by value), so each is chosen only when none before it
//! applies.
//!
//! ```
//! use instrument_core::work::{Classify, Outcome, OptionOutcome as _, PlainOutcome as _, ResultOutcome as _, TypedOutcome as _};
//!
//! let failed: Result<(), &str> = Err("no such workflow");
//! assert_eq!(
//!     (&&Classify(&failed)).__instrument_outcome(),
//!     Outcome::Failed {
//!         message: "no such workflow".into(),
//!         error_type: "_OTHER".into(),
//!         exception_type: "&str",
//!     }
//! );
//! assert_eq!((&&Classify(&None::<u8>)).__instrument_outcome(), Outcome::failed("returned None"));
//! assert_eq!((&&Classify(&42)).__instrument_outcome(), Outcome::Completed);
//! let io: Result<(), std::io::Error> = Err(std::io::ErrorKind::TimedOut.into());
//! let Outcome::Failed { error_type, .. } = (&&Classify(&io)).__instrument_outcome() else { panic!() };
//! assert_eq!(error_type, "TimedOut");
//! ```

use std::borrow::Cow;
use std::fmt::Display;

use crate::semconv::OTHER;

/// How a call ended, as its return value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok`, `Some` or any other value.
    Completed,
    /// `Err(e)`, `None`, or a panic.
    Failed {
        /// `e`'s `Display` text (not yet redacted).
        message: String,
        /// The failure's class, as `error.type` records it: the error's
        /// [`ErrorType`], else the error's type name, else `_OTHER`.
        error_type: Cow<'static, str>,
        /// What failed, as `exception.type` records it: the error's type name
        /// (`error` when there is none).
        exception_type: &'static str,
    },
}

impl Outcome {
    /// A failure with `message` and no known class (`error.type` `_OTHER`).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            error_type: Cow::Borrowed(OTHER),
            exception_type: "error",
        }
    }
}

/// The class of an error, as spans (`error.type`) and failure metrics (`error_type`)
/// record it: low-cardinality (a kind, a code), never the message. Implemented here for
/// `std::io::Error` (its kind) and, with the feature `tonic`, `tonic::Status` (its
/// code's name, as the tower layers name a gRPC failure); implement it for your own
/// error types. Without it, an error's class is its type's name.
///
/// ```
/// use std::borrow::Cow;
/// use instrument_core::work::ErrorType;
///
/// enum WorkflowError { NotFound, Conflict(String) }
///
/// impl ErrorType for WorkflowError {
///     fn error_type(&self) -> Cow<'static, str> {
///         match self {
///             Self::NotFound => "not_found".into(),
///             Self::Conflict(_) => "conflict".into(),
///         }
///     }
/// }
/// ```
pub trait ErrorType {
    /// This error's class.
    fn error_type(&self) -> Cow<'static, str>;
}

impl ErrorType for std::io::Error {
    fn error_type(&self) -> Cow<'static, str> {
        Cow::Owned(format!("{:?}", self.kind()))
    }
}

#[cfg(feature = "tonic")]
impl ErrorType for tonic::Status {
    fn error_type(&self) -> Cow<'static, str> {
        let code = u16::try_from(i32::from(self.code())).unwrap_or(u16::MAX);
        Cow::Borrowed(crate::semconv::grpc_code_name(code))
    }
}

/// The class of an error of type `E` that has no [`ErrorType`]: its type's name, or
/// `_OTHER` for a bare message (`String`, `&str`, a boxed `dyn Error`).
pub fn error_type_of<E: ?Sized>() -> Cow<'static, str> {
    let name = std::any::type_name::<E>();
    let bare = matches!(name, "alloc::string::String" | "&str" | "str")
        || name.starts_with("alloc::boxed::Box<dyn ")
        || name.starts_with("&dyn ")
        || name == "anyhow::Error";
    Cow::Borrowed(if bare { OTHER } else { name })
}

/// The return value being classified.
pub struct Classify<'a, T>(pub &'a T);

// Not derived: a derive would ask `T: Copy`, and the value is only borrowed.
impl<T> Clone for Classify<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Classify<'_, T> {}

/// `Result<T, E: ErrorType + Display>`: `Err` fails with `E`'s text and class.
pub trait TypedOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T, E: Display + ErrorType> TypedOutcome for &Classify<'_, Result<T, E>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Completed,
            Err(e) => Outcome::Failed {
                message: e.to_string(),
                error_type: e.error_type(),
                exception_type: std::any::type_name::<E>(),
            },
        }
    }
}

/// `Result<T, E: Display>`: `Err` fails with `E`'s text, classed by its type's name.
pub trait ResultOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T, E: Display> ResultOutcome for Classify<'_, Result<T, E>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Completed,
            Err(e) => Outcome::Failed {
                message: e.to_string(),
                error_type: error_type_of::<E>(),
                exception_type: std::any::type_name::<E>(),
            },
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
            None => Outcome::failed("returned None"),
        }
    }
}

/// Any other value completes.
pub trait PlainOutcome {
    /// The outcome.
    fn __instrument_outcome(self) -> Outcome;
}

impl<T> PlainOutcome for Classify<'_, T> {
    fn __instrument_outcome(self) -> Outcome {
        Outcome::Completed
    }
}
