//! End-to-end tests: the built `infra` binary run against real directories, the
//! way a user runs it. One test binary (ripgrep's layout); modules by topic.

mod support;

mod aws;
mod backup;
mod bad_input;
mod compose;
mod crash;
mod docker;
mod faults;
mod firewall;
mod first_hour;
mod fleet;
mod help;
mod lsp;
mod plan_output;
mod properties;
mod proxy;
mod quickstart;
mod rollout;
mod saved_plan;
mod secrets;
mod ssh;
mod state_safety;
mod swarm;
mod team;
mod workflow;
