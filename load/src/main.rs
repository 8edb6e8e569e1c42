//! The `chat-load` binary: parses the command line, raises the open-file limit, runs the
//! scenario and prints its report (a table, or one JSON object with `--json`).
//!
//! Exit codes: 0 every figure checked out (nothing lost, duplicated or reordered; nothing
//! refused; in time), 1 the run happened but did not check out, or could not start,
//! 2 bad arguments (clap's own code).

use std::process::ExitCode;

use clap::Parser;

use chat_load::config::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat-load: {e}");
            return ExitCode::from(2);
        }
    };
    // Each member is one descriptor; a few more for poll and stdio.
    let need = cfg.members as u64 + 16;
    match chat_load::raise_nofile_limit() {
        Ok(limit) if limit < need => eprintln!(
            "chat-load: warning: open-file limit is {limit}, {need} needed; raise the hard \
             limit (ulimit -Hn) or some members will fail to connect"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("chat-load: warning: cannot raise the open-file limit: {e}"),
    }
    let run = match cfg.scenario {
        chat_load::config::Scenario::ResumeStorm => chat_load::resume::run,
        _ => chat_load::engine::run,
    };
    let report = match run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chat-load: {e}");
            return ExitCode::from(1);
        }
    };
    if cfg.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
