//! Example (being built).
