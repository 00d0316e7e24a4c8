//! Failover step types (in progress).
