//! Cross-service tests against real PostgreSQL and NATS. One binary, with
//! a module per area. Every test gets its own database and its own JetStream
//! stream and subject prefix (see [`harness`]), so they run in parallel.

mod archive;
mod bad_input;
mod calendar;
mod cli;
mod crash;
mod directory;
mod discussions;
mod eventstore;
mod flow;
mod harness;
mod isolation;
mod ops;
mod people;
mod posts;
mod projections;
mod rsvps;
mod search;
mod social;
mod timelines;
mod usage;
mod visibility;
