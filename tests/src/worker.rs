//! Harness for the worker (being built).
