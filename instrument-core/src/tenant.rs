//! Tenant identity: a validated [`TenantId`] and the cross-tenant check.
//!
//! Every span must carry `tenant.id`, and a request must never touch another tenant's
//! workflow. Both start with a tenant id that is known to be well-formed:
//!
//! ```
//! use instrument_core::tenant::{ensure_same_tenant, TenantId};
//!
//! let caller = TenantId::parse("acme-corp")?;
//! let owner = TenantId::parse("globex")?;
//! let err = ensure_same_tenant(&caller, &owner).unwrap_err();
//! assert!(!err.to_string().contains("globex"));
//! # Ok::<(), instrument_core::tenant::TenantIdError>(())
//! ```

use std::fmt;
use std::sync::Arc;

/// Longest tenant id accepted, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 128;

/// A validated tenant id: 1 to 128 bytes of `[A-Za-z0-9._:-]`.
///
/// Cheap to clone (shared storage), so it can travel in request extensions and
/// OpenTelemetry contexts without copying.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a tenant id was rejected. Never contains the rejected input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_TENANT_ID_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside `[A-Za-z0-9._:-]` (whitespace and control characters included).
    InvalidByte {
        /// Byte offset of the first offending byte.
        offset: usize,
    },
}

impl fmt::Display for TenantIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("tenant id is empty"),
            Self::TooLong { len } => write!(
                f,
                "tenant id is {len} bytes long, at most {MAX_TENANT_ID_LEN} allowed"
            ),
            Self::InvalidByte { offset } => write!(
                f,
                "tenant id has a character other than A-Z a-z 0-9 . _ : - at byte {offset}"
            ),
        }
    }
}

impl std::error::Error for TenantIdError {}

fn is_tenant_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

impl TenantId {
    /// Validates `raw` as a tenant id.
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        Self::validate(raw)?;
        Ok(Self(Arc::from(raw)))
    }

    /// Validates a raw header or metadata value as a tenant id.
    ///
    /// The last few tenants parsed on the thread are remembered, so a tenant seen
    /// again is shared rather than allocated (a server parses its tenants' ids on every
    /// request, and most requests come from a few tenants).
    pub fn parse_bytes(raw: &[u8]) -> Result<Self, TenantIdError> {
        if let Some(known) = recent::find(raw) {
            return Ok(known);
        }
        Self::validate_bytes(raw)?;
        // Validated bytes are ASCII.
        let tenant = Self::parse(
            std::str::from_utf8(raw).map_err(|_| TenantIdError::InvalidByte { offset: 0 })?,
        )?;
        recent::keep(&tenant);
        Ok(tenant)
    }

    /// Checks `raw` without building a `TenantId`.
    pub fn validate(raw: &str) -> Result<(), TenantIdError> {
        Self::validate_bytes(raw.as_bytes())
    }

    fn validate_bytes(raw: &[u8]) -> Result<(), TenantIdError> {
        if raw.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if raw.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong { len: raw.len() });
        }
        match raw.iter().position(|&b| !is_tenant_byte(b)) {
            Some(offset) => Err(TenantIdError::InvalidByte { offset }),
            None => Ok(()),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text, for attribute and label values that should not copy it.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

/// The tenants parsed last on each thread.
mod recent {
    use std::cell::{Cell, RefCell};

    use super::TenantId;

    /// Tenants remembered per thread.
    const SLOTS: usize = 4;

    thread_local! {
        static RECENT: RefCell<[Option<TenantId>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
        static NEXT: Cell<usize> = const { Cell::new(0) };
    }

    /// The remembered tenant whose id is `raw`.
    pub(super) fn find(raw: &[u8]) -> Option<TenantId> {
        RECENT
            .try_with(|recent| {
                let recent = recent.try_borrow().ok()?;
                recent
                    .iter()
                    .flatten()
                    .find(|tenant| tenant.0.as_bytes() == raw)
                    .cloned()
            })
            .ok()
            .flatten()
    }

    /// Remembers `tenant`, in place of the one remembered longest ago.
    pub(super) fn keep(tenant: &TenantId) {
        let _ = RECENT.try_with(|recent| {
            if let Ok(mut recent) = recent.try_borrow_mut() {
                let slot = NEXT.with(|next| {
                    let slot = next.get();
                    next.set((slot + 1) % SLOTS);
                    slot
                });
                recent[slot] = Some(tenant.clone());
            }
        });
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", &*self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = TenantIdError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::validate(&s)?;
        Ok(Self(Arc::from(s)))
    }
}

impl PartialEq<str> for TenantId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A request tried to reach a resource that belongs to another tenant.
///
/// Its message names neither tenant: telling a caller which tenant owns a workflow id
/// would leak that the id exists and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMismatch {
    _private: (),
}

impl fmt::Display for TenantMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the resource belongs to a different tenant")
    }
}

impl std::error::Error for TenantMismatch {}

/// `Ok` when `actual` (the owner of a resource) is the `expected` tenant (the caller).
pub fn ensure_same_tenant(expected: &TenantId, actual: &TenantId) -> Result<(), TenantMismatch> {
    if expected == actual {
        Ok(())
    } else {
        Err(TenantMismatch { _private: () })
    }
}

/// `cx` with `tenant` as the request's tenant. Spans started under the returned context
/// (and under contexts derived from it) are stamped with `tenant.id` by the pipeline's
/// tenant processor, including spans made by other libraries.
///
/// ```
/// use instrument_core::tenant::{tenant_from, with_tenant, TenantId};
/// use opentelemetry::Context;
///
/// let cx = with_tenant(&Context::new(), TenantId::parse("acme")?);
/// assert_eq!(tenant_from(&cx).map(TenantId::as_str), Some("acme"));
/// # Ok::<(), instrument_core::tenant::TenantIdError>(())
/// ```
pub fn with_tenant(cx: &opentelemetry::Context, tenant: TenantId) -> opentelemetry::Context {
    cx.with_value(tenant)
}

/// The tenant `cx` carries, if any (see [`with_tenant`]).
pub fn tenant_from(cx: &opentelemetry::Context) -> Option<&TenantId> {
    cx.get::<TenantId>()
}

/// The tenant of the current OpenTelemetry context, if any.
pub fn current_tenant() -> Option<TenantId> {
    opentelemetry::Context::map_current(|cx| tenant_from(cx).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_parsed_again_on_a_thread_is_shared_and_bad_ids_still_fail() {
        let first = TenantId::parse_bytes(b"acme-recent").unwrap();
        let again = TenantId::parse_bytes(b"acme-recent").unwrap();
        assert!(Arc::ptr_eq(&first.shared(), &again.shared()));
        assert!(TenantId::parse_bytes(b"acme-recent ").is_err());
        assert!(TenantId::parse_bytes(b"acme-recen").is_ok_and(|t| t.as_str() == "acme-recen"));
        // More tenants than are remembered: each still parses to itself.
        for i in 0..20 {
            let id = format!("t{i}");
            assert_eq!(TenantId::parse_bytes(id.as_bytes()).unwrap().as_str(), id);
        }
    }

    #[test]
    fn tenant_travels_in_the_context() {
        let acme = TenantId::parse("acme").unwrap();
        let cx = with_tenant(&opentelemetry::Context::new(), acme.clone());
        assert_eq!(tenant_from(&cx), Some(&acme));
        assert_eq!(current_tenant(), None);
        let _guard = cx.attach();
        assert_eq!(current_tenant(), Some(acme));
    }

    #[test]
    fn accepts_the_allowed_alphabet() {
        let id = TenantId::parse("Acme_Corp-01.eu:west").unwrap();
        assert_eq!(id.as_str(), "Acme_Corp-01.eu:west");
        assert_eq!(id, "Acme_Corp-01.eu:west");
        assert!(TenantId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_bad_bytes() {
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert_eq!(
            TenantId::parse(&"a".repeat(129)),
            Err(TenantIdError::TooLong { len: 129 })
        );
        for (bad, offset) in [
            ("acme corp", 4),
            ("acme\n", 4),
            ("\tacme", 0),
            ("acmé", 3),
            ("a/b", 1),
            ("a\0", 1),
        ] {
            assert_eq!(
                TenantId::parse(bad),
                Err(TenantIdError::InvalidByte { offset }),
                "{bad:?}"
            );
        }
        assert_eq!(
            TenantId::parse_bytes(b"ok\xff"),
            Err(TenantIdError::InvalidByte { offset: 2 })
        );
    }

    #[test]
    fn errors_do_not_echo_unbounded_input() {
        let huge = "x".repeat(10_000);
        let msg = TenantId::parse(&huge).unwrap_err().to_string();
        assert!(msg.len() < 100, "{msg}");
        let msg = TenantId::parse("secret value").unwrap_err().to_string();
        assert!(!msg.contains("secret"));
    }

    #[test]
    fn mismatch_names_no_tenant() {
        let a = TenantId::parse("alpha").unwrap();
        let b = TenantId::parse("bravo").unwrap();
        assert!(ensure_same_tenant(&a, &a).is_ok());
        let msg = ensure_same_tenant(&a, &b).unwrap_err().to_string();
        assert!(!msg.contains("alpha") && !msg.contains("bravo"));
    }

    #[test]
    fn serde_validates() {
        let id: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(id, "acme");
        assert!(serde_json::from_str::<TenantId>("\"bad tenant\"").is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"acme\"");
    }
}
