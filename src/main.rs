use clap::Parser;

use servebench::cli::{normalize_args, Cli, Command};

fn main() {
    let argv = normalize_args(std::env::args());
    let cli = Cli::parse_from(argv.clone());
    // OPENAI_API_KEY now; `--header` credentials once the run has parsed them.
    servebench::secrets::register_headers(&[]);
    let result = match cli.command {
        None => servebench::bench::run(&cli.bench),
        Some(Command::Serve(args)) => servebench::bench::run(&args),
        Some(Command::Mock(args)) => servebench::mock::run(&args),
        Some(Command::Demo(demo)) => servebench::demo::run(&demo),
        Some(Command::Calibrate(args)) => servebench::calibrate::run(&args),
        Some(Command::Report(args)) => servebench::report::html::run(&args),
        Some(Command::Compare(args)) => servebench::report::compare::run(&args),
        Some(Command::Merge(args)) => servebench::multihost::merge::run(&args),
        // The sweep rebuilds each point's command line from what was typed after `sweep`.
        Some(Command::Sweep(args)) => servebench::sweep::run(&args, argv.get(2..).unwrap_or(&[])),
    };
    if let Err(e) = result {
        eprintln!("error: {}", servebench::secrets::scrub(&format!("{e:#}")));
        std::process::exit(1);
    }
    // A run stopped by SIGINT/SIGTERM has reported and saved what it measured; its exit
    // status still says how it ended (130 / 143, as the shell reports a killed process).
    if let Some(code) = servebench::engine::stop::exit_code() {
        std::process::exit(code);
    }
}
