//! sked-worker (being built).
