//! Acceptor unit tests.
