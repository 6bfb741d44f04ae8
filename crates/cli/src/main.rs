//! The `infra` binary: argument parsing, rendering and exit codes over the
//! library crates. No engine logic lives here.

mod args;
mod backend;
mod commands;
mod context;
mod new;
mod progress;
mod render;
mod report;
mod state_commands;

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let argv = args::terraform_style(std::env::args_os().collect());
    let cli = <args::Cli as clap::Parser>::parse_from(argv);
    report::exit(commands::run(cli))
}
