//! Cross-service tests live in `tests/main.rs` (one test binary with modules).
