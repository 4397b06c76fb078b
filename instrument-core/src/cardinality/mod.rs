//! Label cardinality.
