//! Earshot's cross-crate tests: one binary, a module per topic.

mod wire_format;
