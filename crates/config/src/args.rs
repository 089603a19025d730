//! Parsing the command line so that a bad value from the environment names its variable.

use std::ffi::{OsStr, OsString};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command, Parser};

/// Parses the process's arguments (and the `env` fallbacks of its options) into `P`; on an
/// error prints it and exits, as [`Parser::parse`] does, but a refused value that came from an
/// environment variable is reported with that variable's name.
pub fn parse_args<P: Parser>() -> P {
    let argv: Vec<OsString> = std::env::args_os().collect();
    P::try_parse_from(&argv).unwrap_or_else(|err| {
        name_env_source(err, &P::command(), &argv, |var| std::env::var_os(var)).exit()
    })
}

/// When `err` refuses a value of an option that was not on the command line `argv` but set by
/// its environment variable (as read by `env`), rewrites the error to name the variable:
/// clap's own message names only the flag.
pub fn name_env_source(
    mut err: clap::Error,
    cmd: &Command,
    argv: &[OsString],
    env: impl Fn(&OsStr) -> Option<OsString>,
) -> clap::Error {
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let (Some(ContextValue::String(shown)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return err;
    };
    // Arguments display (as in the error) only once their command is built.
    let mut cmd = cmd.clone();
    cmd.build();
    let Some((var, _)) = find_env_arg(&cmd, shown)
        .into_iter()
        .filter_map(|a| a.get_env().map(|var| (var, a)))
        .find(|(var, a)| {
            env(var).is_some_and(|v| v == OsStr::new(value)) && !on_command_line(a, argv)
        })
    else {
        return err;
    };
    let renamed = format!(
        "{shown} (from environment variable {})",
        var.to_string_lossy()
    );
    err.insert(ContextKind::InvalidArg, ContextValue::String(renamed));
    err
}

/// Every argument, in `cmd` and its subcommands, that clap displays as `shown`.
fn find_env_arg<'a>(cmd: &'a Command, shown: &str) -> Vec<&'a Arg> {
    let mut found: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| a.to_string() == shown)
        .collect();
    for sub in cmd.get_subcommands() {
        found.extend(find_env_arg(sub, shown));
    }
    found
}

/// Whether `argv` passes `arg` by its long name or one of its aliases.
fn on_command_line(arg: &Arg, argv: &[OsString]) -> bool {
    let names: Vec<String> = arg
        .get_long_and_visible_aliases()
        .unwrap_or_default()
        .into_iter()
        .map(|l| format!("--{l}"))
        .collect();
    argv.iter().filter_map(|a| a.to_str()).any(|a| {
        names.iter().any(|n| {
            a == n
                || a.strip_prefix(n.as_str())
                    .is_some_and(|r| r.starts_with('='))
        })
    })
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Serve(ServeArgs),
    }

    #[derive(Debug, Args)]
    struct ServeArgs {
        #[arg(long, env = "OPENLEDGER_CONFIG_TEST_NEVER_SET_BATCH")]
        max_batch: Option<usize>,
    }

    fn refused(argv: &[&str]) -> (clap::Error, Vec<OsString>) {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        (Cli::try_parse_from(&argv).unwrap_err(), argv)
    }

    #[test]
    fn a_value_from_the_environment_is_reported_with_the_variable() {
        // clap reads the process environment; the variable is never set, so the refused value
        // comes from the command line and the error is rewritten as if it came from the
        // environment, as it would have with the flag absent.
        let (err, _) = refused(&["ol", "serve", "--max-batch", "many"]);
        let env = |v: &OsStr| {
            (v == "OPENLEDGER_CONFIG_TEST_NEVER_SET_BATCH").then(|| OsString::from("many"))
        };
        let argv_without_flag: Vec<OsString> = ["ol", "serve"].map(OsString::from).to_vec();
        let msg = name_env_source(err, &Cli::command(), &argv_without_flag, env).to_string();
        assert!(
            msg.contains("from environment variable OPENLEDGER_CONFIG_TEST_NEVER_SET_BATCH"),
            "{msg}"
        );
        assert!(msg.contains("'many'"), "{msg}");
    }

    #[test]
    fn a_value_from_the_command_line_is_left_alone() {
        for argv in [
            &["ol", "serve", "--max-batch", "many"][..],
            &["ol", "serve", "--max-batch=many"][..],
        ] {
            let (err, argv) = refused(argv);
            let before = err.to_string();
            // Even with the variable set to the same value, the flag wins and is what clap read.
            let env = |_: &OsStr| Some(OsString::from("many"));
            let after = name_env_source(err, &Cli::command(), &argv, env).to_string();
            assert_eq!(before, after);
            assert!(!after.contains("environment"), "{after}");
        }
        // Another value in the variable: not the one refused.
        let (err, _) = refused(&["ol", "serve", "--max-batch", "many"]);
        let env = |_: &OsStr| Some(OsString::from("3"));
        let msg = name_env_source(err, &Cli::command(), &["ol".into()], env).to_string();
        assert!(!msg.contains("environment"), "{msg}");
    }
}
