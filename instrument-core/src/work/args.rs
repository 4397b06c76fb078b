//! What the attribute's expressions may be: each argument of `#[workflow_span]` is a
//! trait implemented for the types it accepts, so a wrong type is a compile error that
//! names the argument. The macro passes `&(expr)`: an argument is borrowed, never moved
//! out of a value the body still uses.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::{KeyValue, StringValue, Value};

use crate::redact;
use crate::tenant::TenantId;

/// Where a call's span gets its parent.
#[derive(Debug, Clone, Copy)]
pub enum Parent<'a> {
    /// The current OpenTelemetry context (no `traceparent = ...`).
    Current,
    /// A stored traceparent; missing or corrupt starts a fresh trace.
    Stored(Option<&'a str>),
}

/// A value usable as `tenant = ...`.
#[diagnostic::on_unimplemented(
    message = "`tenant = ...` takes &str, String or TenantId (or an Option of one), not `{Self}`"
)]
pub trait TenantArg {
    /// The tenant, when the value is a valid tenant id.
    fn tenant(&self) -> Option<TenantId>;
}

impl TenantArg for str {
    fn tenant(&self) -> Option<TenantId> {
        TenantId::parse(self).ok()
    }
}

impl TenantArg for String {
    fn tenant(&self) -> Option<TenantId> {
        self.as_str().tenant()
    }
}

impl TenantArg for TenantId {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.clone())
    }
}

impl<T: TenantArg + ?Sized> TenantArg for &T {
    fn tenant(&self) -> Option<TenantId> {
        (**self).tenant()
    }
}

impl<T: TenantArg> TenantArg for Option<T> {
    fn tenant(&self) -> Option<TenantId> {
        self.as_ref().and_then(TenantArg::tenant)
    }
}

/// `tenant = ...`: `None` (recorded as tenant `unknown` in metrics, no `tenant.id` on
/// the span) when the value is not a valid tenant id.
///
/// ```
/// use instrument_core::work::tenant;
///
/// assert_eq!(tenant("acme").unwrap().as_str(), "acme");
/// assert!(tenant(&Some("not a tenant!")).is_none());
/// ```
pub fn tenant<T: TenantArg + ?Sized>(value: &T) -> Option<TenantId> {
    value.tenant()
}

/// A value usable as `id = ...` or in `fields(...)`.
#[diagnostic::on_unimplemented(
    message = "`id = ...` and `fields(...)` take strings, integers, floats, booleans or TenantId (or an Option of one), not `{Self}`"
)]
pub trait AttrArg {
    /// The attribute value, redacted for `key`; `None` records nothing.
    fn value(&self, key: &'static str) -> Option<Value>;
}

impl AttrArg for str {
    fn value(&self, key: &'static str) -> Option<Value> {
        // Shared, not owned: the id is recorded on both spans of the call.
        let text: Arc<str> = match redact::global().redact_attribute(key, self) {
            Cow::Borrowed(clean) => Arc::from(clean),
            Cow::Owned(masked) => Arc::from(masked),
        };
        Some(Value::String(StringValue::from(text)))
    }
}

impl AttrArg for String {
    fn value(&self, key: &'static str) -> Option<Value> {
        self.as_str().value(key)
    }
}

impl AttrArg for TenantId {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::String(StringValue::from(self.shared())))
    }
}

impl AttrArg for bool {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

impl AttrArg for f64 {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::F64(*self))
    }
}

macro_rules! int_attr {
    ($($t:ty),*) => {$(
        impl AttrArg for $t {
            fn value(&self, _key: &'static str) -> Option<Value> {
                // Larger than i64 (u64, u128...): recorded as text, not truncated.
                Some(match i64::try_from(*self) {
                    Ok(n) => Value::I64(n),
                    Err(_) => Value::String(StringValue::from(self.to_string())),
                })
            }
        }
    )*};
}
int_attr!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl<T: AttrArg + ?Sized> AttrArg for &T {
    fn value(&self, key: &'static str) -> Option<Value> {
        (**self).value(key)
    }
}

impl<T: AttrArg> AttrArg for Option<T> {
    fn value(&self, key: &'static str) -> Option<Value> {
        self.as_ref().and_then(|v| v.value(key))
    }
}

/// `fields(key = ...)` and `id = ...`: the redacted attribute (string values through
/// the process-wide redactor, [`redact::global`]).
///
/// ```
/// use instrument_core::work::field;
///
/// let kv = field("note", "mail bob@example.com").unwrap();
/// assert_eq!(kv.value.as_str(), "mail [REDACTED]");
/// assert!(field("task.queue", &None::<String>).is_none());
/// ```
pub fn field<T: AttrArg + ?Sized>(key: &'static str, value: &T) -> Option<KeyValue> {
    value.value(key).map(|v| KeyValue::new(key, v))
}

/// A value usable as `traceparent = ...`.
#[diagnostic::on_unimplemented(
    message = "`traceparent = ...` takes Option<&str>, &str or String, not `{Self}`"
)]
pub trait TraceparentArg {
    /// The stored header value, if any.
    fn traceparent(&self) -> Option<&str>;
}

impl TraceparentArg for str {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl TraceparentArg for String {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: TraceparentArg + ?Sized> TraceparentArg for &T {
    fn traceparent(&self) -> Option<&str> {
        (**self).traceparent()
    }
}

impl<T: TraceparentArg> TraceparentArg for Option<T> {
    fn traceparent(&self) -> Option<&str> {
        self.as_ref().and_then(TraceparentArg::traceparent)
    }
}

/// `traceparent = ...`.
pub fn traceparent<T: TraceparentArg + ?Sized>(value: &T) -> Parent<'_> {
    Parent::Stored(value.traceparent())
}

/// A value usable as `started_at = ...`.
#[diagnostic::on_unimplemented(
    message = "`started_at = ...` takes a SystemTime (or an Option of one), not `{Self}`"
)]
pub trait StartedAtArg {
    /// The start time, if known.
    fn started_at(&self) -> Option<SystemTime>;
}

impl StartedAtArg for SystemTime {
    fn started_at(&self) -> Option<SystemTime> {
        Some(*self)
    }
}

impl<T: StartedAtArg + ?Sized> StartedAtArg for &T {
    fn started_at(&self) -> Option<SystemTime> {
        (**self).started_at()
    }
}

impl<T: StartedAtArg> StartedAtArg for Option<T> {
    fn started_at(&self) -> Option<SystemTime> {
        self.as_ref().and_then(StartedAtArg::started_at)
    }
}

/// `started_at = ...`.
pub fn started_at<T: StartedAtArg + ?Sized>(value: &T) -> Option<SystemTime> {
    value.started_at()
}

/// A `labels(...)` value of `#[workflow_span]`: any `Display`, as the label's value.
///
/// ```
/// assert_eq!(instrument_core::work::label(&"payment"), "payment");
/// assert_eq!(instrument_core::work::label(&3), "3");
/// ```
pub fn label<T: std::fmt::Display + ?Sized>(value: &T) -> String {
    value.to_string()
}
