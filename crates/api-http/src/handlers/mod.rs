pub mod admin;
pub mod auth;
pub mod ops;
pub mod projects;
pub mod tasks;
