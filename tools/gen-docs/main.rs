//! `provision-gen-docs OUTDIR`: writes `provision.8` and the bash, zsh and fish completions
//! (`provision.bash`, `_provision`, `provision.fish`) into OUTDIR, for packaging. Not shipped:
//! an example target, so its crates (clap_mangen, clap_complete) stay dev-dependencies and the
//! release binary is built without them. Run from a checkout:
//! `cargo run --example provision-gen-docs -- OUTDIR`.

mod docs;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.len() != 1 || args[0] == "-h" || args[0] == "--help" {
        eprintln!("usage: provision-gen-docs OUTDIR\nwrites into OUTDIR, to be installed as:");
        eprintln!(
            "  {:<16} /usr/share/man/man8/{}",
            docs::MAN_FILE,
            docs::MAN_FILE
        );
        for (_, file, installed) in docs::COMPLETIONS {
            eprintln!("  {file:<16} {installed}");
        }
        return ExitCode::from(2);
    }
    match docs::write_all(&PathBuf::from(&args[0]), &docs::units_dir()) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("provision-gen-docs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
