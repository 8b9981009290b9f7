//! Hostile-image unit tests.
