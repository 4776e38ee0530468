//! sked-replayer (being built).
