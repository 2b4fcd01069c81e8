//! The SLO search: the highest request rate (or concurrency) whose run meets the SLO.
//!
//! A bracketing search over the points measured so far, every one of them reused: the answer
//! lies between the highest passing value under the lowest failing one. Until something fails
//! the value doubles from the start; until something passes it halves. Then each new point
//! splits the bracket where the measured margins (worst value / limit − 1) interpolate to
//! zero, held to the middle 40 % of the bracket on a log scale (so every step cuts it by at
//! least 30 %; a saturated point's infinite margin, or two points in a row on one side of a
//! sharp knee, fall back to the geometric middle). It
//! stops when the bracket is narrower than the precision (relative: high / low ≤ 1 + p; or
//! adjacent whole numbers for a concurrency), at the search range's ends, or after the point
//! budget.
//!
//! The search assumes the margin grows with load. Noise can break that near the answer: a
//! pass above the lowest failure is kept in the history but does not move the bracket, and the
//! answer says the points were not monotone.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub meets: bool,
    pub margin: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The bracket is within the precision.
    Found,
    /// Even the search range's top meets the SLO.
    AllPass,
    /// Even its bottom fails.
    AllFail,
    /// The point budget ran out first.
    Budget,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Found => "found",
            Status::AllPass => "all_pass",
            Status::AllFail => "all_fail",
            Status::Budget => "budget",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: Status,
    pub max_passing: Option<f64>,
    pub min_failing: Option<f64>,
    /// A pass was seen above the lowest failure.
    pub non_monotone: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Run(f64),
    Done(Answer),
}

#[derive(Clone, Debug)]
pub struct Search {
    pub min: f64,
    pub max: f64,
    pub start: f64,
    pub precision: f64,
    /// Whole values only (max concurrency).
    pub integer: bool,
    pub budget: usize,
    pub history: Vec<(f64, Outcome)>,
}

const GROW: f64 = 2.0;

/// A measured value and its margin.
type Point = (f64, f64);

impl Search {
    pub fn record(&mut self, x: f64, o: Outcome) {
        self.history.push((x, o));
    }

    /// The highest pass under the lowest failure and that failure, each as (value, margin),
    /// and whether any pass lies above the failure.
    fn bracket(&self) -> (Option<Point>, Option<Point>, bool) {
        let fail = self
            .history
            .iter()
            .filter(|(_, o)| !o.meets)
            .map(|&(x, o)| (x, o.margin))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let below = |x: f64| fail.is_none_or(|(f, _)| x < f);
        let pass = self
            .history
            .iter()
            .filter(|(x, o)| o.meets && below(*x))
            .map(|&(x, o)| (x, o.margin))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let non_monotone = self.history.iter().any(|(x, o)| o.meets && !below(*x));
        (pass, fail, non_monotone)
    }

    pub fn answer(&self, status: Status) -> Answer {
        let (pass, fail, non_monotone) = self.bracket();
        Answer {
            status,
            max_passing: pass.map(|p| p.0),
            min_failing: fail.map(|f| f.0),
            non_monotone,
        }
    }

    pub fn next(&self) -> Next {
        let (pass, fail, _) = self.bracket();
        let done = |s| Next::Done(self.answer(s));
        let x = match (pass, fail) {
            (None, None) => self.start,
            (Some((p, _)), None) if p >= self.max => return done(Status::AllPass),
            (Some((p, _)), None) => (p * GROW).min(self.max),
            (None, Some((f, _))) if f <= self.min => return done(Status::AllFail),
            (None, Some((f, _))) => (f / GROW).max(self.min),
            (Some((p, mp)), Some((f, mf))) => {
                if self.converged(p, f) {
                    return done(Status::Found);
                }
                self.split(p, mp, f, mf)
            }
        };
        if self.history.len() >= self.budget {
            return done(Status::Budget);
        }
        let x = if self.integer { x.round().max(1.0) } else { x };
        Next::Run(x)
    }

    fn converged(&self, p: f64, f: f64) -> bool {
        f <= p * (1.0 + self.precision) || (self.integer && f - p <= 1.0)
    }

    fn split(&self, p: f64, mp: f64, f: f64, mf: f64) -> f64 {
        let (lp, lf) = (p.ln(), f.ln());
        let (lo, hi) = (lp + 0.3 * (lf - lp), lp + 0.7 * (lf - lp));
        // A sharp knee makes the margins lopsided (a pass at −0.95, a failure at +3): the
        // interpolation then lands on the same side again and again, creeping. After two
        // points in a row on one side, split in the middle instead (as the Illinois variant of
        // regula falsi does).
        let same_side = match self.history.as_slice() {
            [.., (_, a), (_, b)] => a.meets == b.meets,
            _ => false,
        };
        let mut x = if mp.is_finite() && mf.is_finite() && mf > mp && !same_side {
            let t = -mp / (mf - mp);
            (p + t * (f - p)).clamp(lo.exp(), hi.exp())
        } else {
            ((lp + lf) / 2.0).exp()
        };
        if self.integer {
            x = x.round().clamp(p + 1.0, f - 1.0);
        } else {
            // 90.50966799187806 → 90.51: a value a reader can type again.
            let tidy = round_significant(x, 4);
            if tidy > p && tidy < f {
                x = tidy;
            }
        }
        x
    }
}

fn round_significant(x: f64, digits: i32) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

impl Answer {
    pub fn to_json(&self, variable: &str, throughput_at_pass: Option<f64>) -> Value {
        json!({
            "status": self.status.word(),
            "max_passing": self.max_passing,
            "min_failing": self.min_failing,
            "max_passing_throughput": throughput_at_pass,
            "non_monotone": self.non_monotone,
            "text": self.text(variable),
        })
    }

    /// The answer in words.
    pub fn text(&self, variable: &str) -> String {
        let (what, unit) = match variable {
            "max_concurrency" => ("max concurrency", ""),
            _ => ("request rate", " req/s"),
        };
        let n = |v: f64| crate::report::goodput::py_g(v);
        let mut s = match (self.status, self.max_passing, self.min_failing) {
            (Status::AllFail, _, Some(f)) => {
                format!("no {what} tried meets the SLO: even {}{unit} fails", n(f))
            }
            (Status::AllPass, Some(p), _) => format!(
                "every {what} tried meets the SLO, up to the search's top {}{unit} (raise --search-max)",
                n(p)
            ),
            (_, Some(p), Some(f)) => format!(
                "highest {what} meeting the SLO: {}{unit} (fails at {}{unit})",
                n(p),
                n(f)
            ),
            (_, Some(p), None) => format!("highest {what} meeting the SLO: at least {}{unit}", n(p)),
            (_, None, Some(f)) => format!("the SLO fails at {}{unit}, nothing below it passed", n(f)),
            (_, None, None) => "no point was measured".to_string(),
        };
        if self.status == Status::Budget {
            s.push_str("; the point budget ran out before the precision was reached (raise --search-max-points)");
        }
        if self.non_monotone {
            s.push_str("; a higher value passed too: the results are noisy near the answer");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(integer: bool) -> Search {
        Search {
            min: 1.0,
            max: 4096.0,
            start: 4.0,
            precision: 0.05,
            integer,
            budget: 40,
            history: Vec::new(),
        }
    }

    /// Runs the search against a server whose margin is `x / knee - 1`.
    fn solve(mut s: Search, knee: f64) -> (Answer, usize) {
        loop {
            match s.next() {
                Next::Run(x) => {
                    assert!(
                        !s.history.iter().any(|(h, _)| *h == x),
                        "{x} measured twice"
                    );
                    let margin = x / knee - 1.0;
                    s.record(
                        x,
                        Outcome {
                            meets: margin <= 0.0,
                            margin,
                        },
                    );
                }
                Next::Done(a) => return (a, s.history.len()),
            }
        }
    }

    #[test]
    fn finds_a_knee_within_the_precision() {
        for knee in [1.7, 13.0, 100.0, 777.7, 3000.0] {
            let (a, n) = solve(search(false), knee);
            let (p, f) = (a.max_passing.unwrap(), a.min_failing.unwrap());
            assert_eq!(a.status, Status::Found);
            assert!(p <= knee && knee < f && f <= p * 1.05, "{knee}: {p}..{f}");
            assert!(n <= 14, "{knee}: {n} points");
        }
    }

    #[test]
    fn values_are_rounded_to_four_figures() {
        assert_eq!(round_significant(90.50966799187806, 4), 90.51);
        assert_eq!(round_significant(0.123456, 4), 0.1235);
        assert_eq!(round_significant(12345.6, 4), 12350.0);
    }

    #[test]
    fn a_sharp_knee_does_not_make_it_creep() {
        // Latency flat far below the limit, then far over it just past the knee: the margins
        // say little about where the knee is.
        let mut s = search(false);
        (s.min, s.start) = (0.1, 1.0);
        let knee = 0.49;
        let mut n = 0;
        let a = loop {
            match s.next() {
                Next::Run(x) => {
                    let margin = if x <= knee { -0.95 } else { 3.4 };
                    s.record(
                        x,
                        Outcome {
                            meets: x <= knee,
                            margin,
                        },
                    );
                    n += 1;
                }
                Next::Done(a) => break a,
            }
        };
        let (p, f) = (a.max_passing.unwrap(), a.min_failing.unwrap());
        assert!(p <= knee && knee < f && f <= p * 1.05, "{p}..{f}");
        // Halving to 0.25, then at most about log2(ln 2 / ln 1.05) ≈ 4 splits and one
        // interpolation between every two.
        assert!(n <= 9, "{n} points");
    }

    #[test]
    fn whole_numbers_for_concurrency() {
        let (a, _) = solve(search(true), 37.5);
        assert_eq!((a.max_passing, a.min_failing), (Some(37.0), Some(38.0)));
        assert_eq!(a.status, Status::Found);
    }

    #[test]
    fn ends_of_the_range() {
        let (a, _) = solve(search(false), 1e9);
        assert_eq!((a.status, a.max_passing), (Status::AllPass, Some(4096.0)));
        assert!(a.text("request_rate").contains("--search-max"));
        let (a, _) = solve(search(false), 0.5);
        assert_eq!((a.status, a.min_failing), (Status::AllFail, Some(1.0)));
    }

    #[test]
    fn saturated_points_bisect_and_the_budget_stops_it() {
        let mut s = search(false);
        s.record(
            10.0,
            Outcome {
                meets: true,
                margin: -0.5,
            },
        );
        s.record(
            40.0,
            Outcome {
                meets: false,
                margin: f64::INFINITY,
            },
        );
        assert_eq!(s.next(), Next::Run(20.0), "the geometric middle");
        s.budget = 2;
        let Next::Done(a) = s.next() else { panic!() };
        assert_eq!(a.status, Status::Budget);
        assert!(
            a.text("request_rate")
                .contains("10 req/s (fails at 40 req/s)"),
            "{}",
            a.text("request_rate")
        );
    }

    #[test]
    fn a_noisy_pass_above_a_failure_does_not_move_the_bracket() {
        let mut s = search(false);
        for (x, meets) in [(10.0, true), (20.0, false), (30.0, true)] {
            s.record(
                x,
                Outcome {
                    meets,
                    margin: if meets { -0.1 } else { 0.1 },
                },
            );
        }
        let a = s.answer(Status::Found);
        assert_eq!(
            (a.max_passing, a.min_failing, a.non_monotone),
            (Some(10.0), Some(20.0), true)
        );
        assert!(a.text("max_concurrency").contains("noisy"));
    }
}
