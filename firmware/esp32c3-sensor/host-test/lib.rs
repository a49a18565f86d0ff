//! Empty: the tests are in tests/ (they include ../src/tls.rs and ../src/mqtt.rs).
