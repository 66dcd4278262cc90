//! Codec tests (filled in by the property-test pass).
