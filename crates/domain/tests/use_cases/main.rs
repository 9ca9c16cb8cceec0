//! Use-case tests of the domain, run through [`domain::TaskFlow`] on the
//! in-memory adapters and the real credential adapters. One test binary,
//! one module per area.

mod harness;

mod admin;
mod audit;
mod events;
mod health;
mod list;
mod ownership;
mod projects;
mod register;
mod sessions;
mod tasks;
mod transactions;
