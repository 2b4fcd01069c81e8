//! The command line of each point: the user's `serve` flags as typed, less the flags the sweep
//! sets itself, plus the point's values. Parsed by clap like any `servebench serve` command, so
//! a parameter file's misspelt flag fails the way a typo on the command line does.

use clap::{Args, CommandFactory, Parser};

use crate::cli::BenchArgs;

/// A `serve` command line where a later flag replaces an earlier one (the point's values
/// replace the user's).
#[derive(Parser, Debug)]
#[command(name = "servebench", args_override_self = true)]
struct PointCli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// A flag to take out: its long name, its short letter, and whether it takes values (and how
/// many at most).
#[derive(Clone, Debug)]
pub struct Flag {
    pub long: String,
    pub short: Option<char>,
    pub max_values: usize,
}

/// The flags clap knows for `A` (e.g. the sweep's own options).
pub fn flags_of<A: Args>() -> Vec<Flag> {
    let cmd = A::augment_args(clap::Command::new("x"));
    cmd.get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?.to_string();
            let max_values = if a.get_action().takes_values() {
                a.get_num_args().map_or(1, |r| r.max_values())
            } else {
                0
            };
            Some(Flag {
                long,
                short: a.get_short(),
                max_values,
            })
        })
        .collect()
}

/// A `serve` flag by its long name.
pub fn serve_flag(long: &str) -> Flag {
    let cmd = PointCli::command();
    let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long));
    let max_values = arg.map_or(0, |a| {
        if a.get_action().takes_values() {
            a.get_num_args().map_or(1, |r| r.max_values())
        } else {
            0
        }
    });
    Flag {
        long: long.to_string(),
        short: None,
        max_values,
    }
}

/// `tokens` without the `drop` flags and their values.
pub fn strip(tokens: &[String], drop: &[Flag]) -> Vec<String> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        if t == "--" {
            out.extend(tokens[i - 1..].iter().cloned());
            break;
        }
        let hit = if let Some(rest) = t.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((n, _)) => (n, true),
                None => (rest, false),
            };
            drop.iter().find(|f| f.long == name).map(|f| (f, inline))
        } else if let Some(c) = t.strip_prefix('-').and_then(|s| s.chars().next()) {
            let inline = t.len() > 2;
            drop.iter()
                .find(|f| f.short == Some(c))
                .map(|f| (f, inline))
        } else {
            None
        };
        let Some((flag, inline)) = hit else {
            out.push(t.clone());
            continue;
        };
        if inline || flag.max_values == 0 {
            continue;
        }
        // Its values: up to max_values tokens that are not flags (a negative number is a value).
        let mut taken = 0;
        while i < tokens.len() && taken < flag.max_values {
            let v = &tokens[i];
            let is_flag = v.starts_with('-') && v.parse::<f64>().is_err() && v != "-";
            if is_flag {
                break;
            }
            i += 1;
            taken += 1;
        }
    }
    out
}

/// Whether the user typed this flag.
pub fn typed(tokens: &[String], long: &str) -> bool {
    tokens.iter().any(|t| {
        t.strip_prefix("--")
            .is_some_and(|r| r == long || r.starts_with(&format!("{long}=")))
    })
}

/// The `serve` arguments of a point: `base` then `extra` (which win).
pub fn parse_point(base: &[String], extra: &[String]) -> Result<BenchArgs, String> {
    let argv = std::iter::once("servebench".to_string())
        .chain(base.iter().cloned())
        .chain(extra.iter().cloned());
    PointCli::try_parse_from(crate::cli::normalize_args(argv))
        .map(|c| c.bench)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn strips_flags_in_every_spelling() {
        let drop = vec![
            Flag {
                long: "slo".into(),
                short: None,
                max_values: usize::MAX,
            },
            Flag {
                long: "output-dir".into(),
                short: Some('o'),
                max_values: 1,
            },
            Flag {
                long: "dry-run".into(),
                short: None,
                max_values: 0,
            },
        ];
        let t = s(&[
            "--model",
            "m",
            "--slo",
            "ttft:5",
            "tpot:1",
            "--dry-run",
            "-o",
            "d",
            "--seed=3",
            "--output-dir=x",
            "-od",
            "--num-prompts",
            "10",
        ]);
        assert_eq!(
            strip(&t, &drop),
            s(&["--model", "m", "--seed=3", "--num-prompts", "10"])
        );
    }

    #[test]
    fn later_values_win_and_bad_ones_are_named() {
        let b = parse_point(
            &s(&["--request-rate", "5", "--seed", "1"]),
            &s(&["--request-rate", "7.5"]),
        )
        .unwrap();
        assert_eq!((b.request_rate, b.seed), (7.5, 1));
        let e = parse_point(&[], &s(&["--random-inptu-len", "3"])).unwrap_err();
        assert!(e.contains("random-inptu-len"), "{e}");
        assert_eq!(serve_flag("request-rate").max_values, 1);
        assert_eq!(serve_flag("save-result").max_values, 0);
        assert!(typed(&s(&["--num-prompts=4"]), "num-prompts"));
        assert!(!typed(&s(&["--num-prompts-x"]), "num-prompts"));
    }
}
