//! `cargo xtask <command>`: the one entry point for developers and CI.
//!
//! Each command lives in its own module; `test` runs a list of steps, each owned by the module
//! of the tier it tests, so the tiers can grow without touching one another.

mod bench;
mod blocklist;
mod cache;
mod clean;
mod crates;
mod cross;
mod demo;
mod fuzz;
mod images;
mod licences;
mod resources;
mod setup;
mod sh;
mod soak;
mod test;
mod units;
mod vm;

use anyhow::{Result, bail};

fn usage() -> ! {
    eprintln!(
        "usage: cargo xtask <command>\n\
         \n\
         commands:\n\
         \x20 demo [--keep]           the main job: real daemons, simulated platform, private bus\n\
         \x20 soak [--boots N] [--seed S] [--gate-off] [--ipmi]  many boots of the simulated server\n\
         \x20 test [--list] [STEP…]   every test tier (installs what it needs when run as root)\n\
         \x20 setup                   install the host packages the tests need (root)\n\
         \x20 clean [--all]           remove this clone's build outputs and prune the cache;\n\
         \x20                         --all: the cache and stale test scratch dirs too\n\
         \x20 crates [--check]        write (or check) the Yocto crates file from Cargo.lock\n\
         \x20 licences [--check]      write (or check) the recipe's LICENSE / LIC_FILES_CHKSUM\n\
         \x20                         from the licences of the crates the binary links\n\
         \x20 cross [--test] [--daemon] [--record] [TARGET…]\n\
         \x20                         cross-build for the AST2500/AST2600, print sizes\n\
         \x20                         (--record: into BENCHMARKS.md)\n\
         \x20 vm [-v]                 machine tier: the installed suite in a qemu VM (root)\n\
         \x20 bench [--quick] [--only S] gate latency (also beside a stalled systemd), IPMI,\n\
         \x20                         footprint → BENCHMARKS.md\n\
         \x20 fuzz [--secs N] [T…]    ipmi-lan fuzz targets, N s each (default 60; needs nightly)\n"
    );
    std::process::exit(2)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        usage()
    };
    match cmd.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "demo" => demo::run(rest),
        "soak" => soak::run(rest),
        "setup" => setup::host_packages(setup::BASE_PACKAGES),
        "clean" => clean::run(rest),
        "crates" => crates::run(rest),
        // The American spelling too: typing either should just work.
        "licences" | "licenses" => licences::run(rest),
        "cross" => cross::run(rest),
        "vm" => vm::run(rest),
        "fuzz" => fuzz::run(rest),
        "-h" | "--help" | "help" => usage(),
        other => bail!("unknown command `{other}` (try `cargo xtask help`)"),
    }
}
