//! Help that reads the same in every binary: the option groups (headings) in one order, the
//! logging flags every binary shares, and the command line parsed with both.

use clap::{Arg, ArgAction, Args, Command, CommandFactory, FromArgMatches};

/// Heading of the flags that choose what to look at: repository, revisions, cluster, namespaces.
pub const WATCH: &str = "What to watch";
/// Heading of the flags that reach registries: credentials, CA, mirrors, limits.
pub const REGISTRY: &str = "Registry access";
/// Heading of the flags that write to git: commits, branches, credentials for remotes.
pub const GIT: &str = "Git write-back";
/// Heading of the flags of a long-running or rollout-watching controller.
pub const CONTROLLER: &str = "Controller";
/// Heading of the flags that shape what is printed or written, and how much is logged.
pub const OUTPUT: &str = "Output";

/// The headings in the order every binary shows them (after clap's own `Options`, which holds
/// what is particular to one subcommand, `--help` and `--version`).
pub const HEADINGS: [&str; 5] = [WATCH, REGISTRY, GIT, CONTROLLER, OUTPUT];

/// `-v`/`-q`, the same in every binary (accepted anywhere on the command line).
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct LogArgs {
    /// More on stderr: -v debug logs and every cause of an error, -vv trace (FERRY_LOG wins).
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = OUTPUT)]
    pub verbose: u8,
    /// Only errors on stderr: no warnings, no logs (FERRY_LOG wins); stdout is unchanged.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = OUTPUT)]
    pub quiet: bool,
}

impl LogArgs {
    /// Start logging: `default` unless `-v` (debug), `-vv` (trace) or `-q` (errors, keeping
    /// the per-target rules of `default` after its first `,`) say otherwise; `FERRY_LOG` wins
    /// over all of them.
    pub fn init(self, default: &str) {
        crate::set_verbosity(self.verbose, self.quiet);
        let rules = default.find(',').map_or("", |i| &default[i..]);
        let filter = match (self.quiet, self.verbose) {
            (true, _) => format!("error{rules}"),
            (false, 0) => default.to_string(),
            (false, 1) => "debug".to_string(),
            _ => "trace".to_string(),
        };
        crate::init_tracing_with(&filter);
    }
}

/// The command of `P`, every command's options sorted by [`HEADINGS`] (within a group they keep
/// their order). A subcommand's own options come before the global ones it inherits in clap's
/// help, which would put a subcommand's `Controller` above the shared `What to watch`; the
/// globals are therefore copied in here (clap skips copying them again) and sorted with the rest.
pub fn command<P: CommandFactory>() -> Command {
    ordered(P::command(), &[])
}

fn ordered(cmd: Command, inherited: &[Arg]) -> Command {
    let mut cmd = cmd;
    for g in inherited {
        if !cmd.get_arguments().any(|a| a.get_id() == g.get_id()) {
            cmd = cmd.arg(g.clone());
        }
    }
    // Within a group the shared (global) options first, then the subcommand's own.
    let mut ids: Vec<((usize, bool), String)> = cmd
        .get_arguments()
        .map(|a| {
            let key = (rank(a.get_help_heading()), !a.is_global_set());
            (key, a.get_id().to_string())
        })
        .collect();
    ids.sort_by_key(|(key, _)| *key);
    for (_, id) in ids {
        // `mut_arg` moves the argument to the end: moving all in order sorts them.
        cmd = cmd.mut_arg(id, |a| a);
    }
    let globals: Vec<Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sc| ordered(sc, &globals));
    }
    cmd
}

/// Where a heading sorts: clap's `Options` first, then [`HEADINGS`], anything else last.
fn rank(heading: Option<&str>) -> usize {
    match heading {
        None => 0,
        Some(h) => HEADINGS
            .iter()
            .position(|x| *x == h)
            .map_or(HEADINGS.len() + 1, |i| i + 1),
    }
}

/// Parse `args` (the program name first) with [`command`].
pub fn try_parse_from<P, I, T>(args: I) -> Result<P, clap::Error>
where
    P: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command::<P>();
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    P::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[arg(long, global = true, help_heading = OUTPUT)]
        json: bool,
        #[arg(long, global = true, help_heading = WATCH)]
        repo: Option<String>,
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        Run {
            #[arg(long, help_heading = CONTROLLER)]
            interval: Option<String>,
            #[arg(long)]
            own: bool,
        },
    }

    #[test]
    fn subcommand_options_follow_the_heading_order_with_the_inherited_ones() {
        let mut cmd = command::<Cli>();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_help().to_string();
        let at = |h: &str| help.find(&format!("{h}:")).expect(h);
        assert!(at("Options") < at(WATCH), "{help}");
        assert!(at(WATCH) < at(CONTROLLER), "{help}");
        assert!(at(CONTROLLER) < at(OUTPUT), "{help}");
        let cli: Cli = try_parse_from(["x", "run", "--json", "--repo", "r", "--interval", "1s"])
            .expect("parses");
        assert!(cli.json);
        assert_eq!(cli.repo.as_deref(), Some("r"));
        let Cmd::Run { interval, own } = cli.cmd;
        assert_eq!(interval.as_deref(), Some("1s"));
        assert!(!own);
    }
}
