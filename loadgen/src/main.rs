//! census-loadgen: parses flags and runs the benchmark (see lib.rs).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = census_loadgen::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("census-loadgen: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(census_loadgen::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("census-loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
