//! Writes the shipped policy's decision cases as real requests (tokens minted now, valid five
//! minutes) to a JSON file, for hosts outside Rust — the edge runtimes — to replay:
//! `bridle-cases OUT.json`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: bridle-cases OUT.json");
        return ExitCode::from(2);
    };
    let written = host_tests::cases::agents()
        .and_then(|set| serde_json::to_vec_pretty(&set).map_err(host_tests::Error::from))
        .and_then(|json| {
            std::fs::write(&out, json).map_err(|source| host_tests::Error::Io {
                context: format!("writing {out}"),
                source,
            })
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bridle-cases: {err}");
            ExitCode::FAILURE
        }
    }
}
