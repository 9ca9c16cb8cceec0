//! Use-case tests of the domain, run through [`domain::TaskFlow`] on the
//! in-memory adapters and the real credential adapters. One test binary,
//! one module per area.

mod harness;

mod health;
mod list;
mod ownership;
mod register;
mod sessions;
mod tasks;
mod transactions;
