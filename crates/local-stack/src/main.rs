//! `heyblue-local`: the whole Hey, Blue! fleet on one machine, without
//! Docker. See [`stack`] for what it starts and in which order.

mod banner;
mod config;
mod seed;
mod stack;
mod supervisor;

use std::io::IsTerminal;
use std::process::ExitCode;

use config::{Colour, Command, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let exe_dir = match std::env::current_exe() {
        Ok(exe) => exe.parent().map(ToOwned::to_owned).unwrap_or_default(),
        Err(error) => {
            eprintln!("local-stack | error: cannot locate this executable: {error}");
            return ExitCode::FAILURE;
        }
    };
    let terminals = Colour {
        stdout: std::io::stdout().is_terminal(),
        stderr: std::io::stderr().is_terminal(),
    };
    let command = Command::parse(
        std::env::args().skip(1),
        |name| std::env::var(name).ok(),
        &exe_dir,
        terminals,
    );
    match command {
        Ok(Command::Run(config)) => stack::run(*config).await,
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("local-stack | error: {error:#}");
            ExitCode::from(2)
        }
    }
}
