//! The `polyprune` binary: parse the command line, call the library, turn errors into one line.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    restore_default_sigpipe();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::exit(commands::exit_code(&e));
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause that the message before it
/// already quotes (many of the library's messages embed their source), on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text.replace('\n', " ")
}

/// Rust ignores SIGPIPE, so `polyprune model inspect dir | head` would make every later print
/// fail (and `println!` panic). A command-line tool should instead end quietly when its reader
/// goes away, as C tools do.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
