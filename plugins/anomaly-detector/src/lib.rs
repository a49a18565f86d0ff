//! Anomaly detector (work in progress).
