//! Harness for the replayer (being built).
