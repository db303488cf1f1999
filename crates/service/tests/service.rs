//! Tests of `earshotd` through its router (`tower::ServiceExt::oneshot`, no
//! socket) and the library, on SQLite and, when `EARSHOT_TEST_POSTGRES_URL`
//! names a server, on PostgreSQL too. One binary, a module per topic.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/s3.rs"]
mod s3;

mod service {
    pub mod support;

    mod accounts;
    mod admin;
    mod analytics;
    mod bad_input;
    mod calls;
    mod demo;
    mod differential;
    mod end_to_end;
    mod events;
    mod faults;
    mod import;
    mod instances;
    mod moving;
    mod openapi;
    mod recordings;
    mod retention;
    mod sealed;
    mod store;
    mod tenants;
}
