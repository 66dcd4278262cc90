//! `paxosctl bench (--values N | --duration SECS [--warmup SECS]) --concurrency C [--size BYTES] [--timeout SECS] [--json]`
//!
//! Keeps C proposals in flight (C clients, one request each, as the proposers
//! allow, sharing one socket: [`MultiClient`](crate::multi::MultiClient)) and
//! records each value's latency, from the first send to the decision, in an
//! HDR histogram (microseconds, three significant digits). It runs either
//!
//! - by count (`--values N`): until N values of BYTES bytes are decided or have
//!   failed; throughput is over the whole run, first send to last answer; or
//! - by time (`--duration SECS`, `--warmup SECS`): new values are proposed
//!   until warm-up plus duration have passed; only the values decided in the
//!   window after the warm-up count in throughput and latency (a value decided
//!   during the warm-up, or while the last ones drain, counts in neither), so
//!   that the figures are those of steady load, and the throughput is over the
//!   window.
//!
//! On a terminal a progress bar runs on stderr; piped, there is none. It ends
//! with one line: values, elapsed time, values/s, latency p50/p99/max in ms and
//! errors; with `--json`, one JSON object instead:
//! `{"values":N,"concurrency":C,"size":B,"proposers":P,"acceptors":A,
//! "elapsed_s":..,"values_per_s":..,"p50_ms":..,"p99_ms":..,"max_ms":..,"errors":..,
//! "measured":M,"warmup_s":W,"duration_s":D}` where `elapsed_s` is the time
//! the throughput is over (the window, by time), `measured` the values counted
//! in it, and `warmup_s` and `duration_s` are `null` when run by count.
//! Exit 1 when any value failed (with one line on stderr naming the first).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use paxos_proto::{Slot, MAX_VALUE_BYTES};
use serde::Serialize;

use super::{describe, diag, proposing_client, quote, CtlError, Out};
use paxos_client::client::ClientError;
use paxos_client::config::ClusterConfig;

/// The highest latency the histogram tells apart, in microseconds (one hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The arguments of `paxosctl bench`: a run by count (`--values`) or by time (`--duration`), one of them.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("plan").required(true).args(["values", "duration"])))]
pub struct BenchArgs {
    /// How many values to propose (a run by count; or give --duration).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub values: Option<u64>,
    /// Propose for this many seconds after the warm-up (a run by time): only
    /// the values decided in that window count in throughput and latency.
    #[arg(long, value_name = "SECS", value_parser = super::parse_secs)]
    pub duration: Option<Duration>,
    /// With --duration: load for this many seconds first, counted in neither
    /// throughput nor latency (default 0).
    #[arg(long, value_name = "SECS", value_parser = parse_warmup, requires = "duration")]
    pub warmup: Option<Duration>,
    /// How many proposals to keep in flight (one client each).
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// The size of each value in bytes (at most 8192).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,
    /// Count a value as an error when it is not decided after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = super::parse_secs, default_value = "10")]
    pub timeout: Duration,
    /// Print one JSON object with the figures instead of the summary line.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// Refuses a value size over the limit before anything is sent.
    ///
    /// # Errors
    /// [`CtlError::Usage`] when `--size` is over [`MAX_VALUE_BYTES`].
    pub fn check(&self) -> Result<(), CtlError> {
        if self.size > MAX_VALUE_BYTES {
            return Err(CtlError::Usage(format!(
                "--size {}: over the limit of {MAX_VALUE_BYTES} bytes per value; nothing was sent",
                self.size
            )));
        }
        self.plan().map(|_| ())
    }

    /// How the run ends, as the arguments ask.
    ///
    /// # Errors
    /// [`CtlError::Usage`] unless exactly one of `--values` and `--duration`
    /// is given (clap checks it on the command line), or for `--warmup` with `--values`.
    pub fn plan(&self) -> Result<Plan, CtlError> {
        match (self.values, self.duration, self.warmup) {
            (None, Some(duration), warmup) => Ok(Plan::Time { warmup: warmup.unwrap_or(Duration::ZERO), duration }),
            (Some(n), None, None) => Ok(Plan::Count(n)),
            // clap lets `--values N --warmup S` through: `requires` gives way to the conflict.
            (Some(_), None, Some(_)) => {
                Err(CtlError::Usage("--warmup goes with --duration, not --values; nothing was sent".to_owned()))
            }
            _ => Err(CtlError::Usage("give either --values N or --duration SECS; nothing was sent".to_owned())),
        }
    }
}

/// Parses `--warmup SECS`: as `--timeout`, but 0 is allowed.
fn parse_warmup(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => super::parse_secs(text),
    }
}

/// How a run ends, and which decisions count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    /// Until this many values are decided or have failed; every decision counts.
    Count(u64),
    /// New values until `warmup + duration` has passed; the decisions made in
    /// the window after the warm-up, and only those, count.
    Time {
        /// Load before the window.
        warmup: Duration,
        /// The window.
        duration: Duration,
    },
}

impl Plan {
    /// Whether the `i`th value may still be proposed, `since` the start.
    pub fn proposes(&self, i: u64, since: Duration) -> bool {
        match *self {
            Plan::Count(n) => i < n,
            Plan::Time { warmup, duration } => since < warmup + duration,
        }
    }

    /// Whether a value decided `at` this time since the start counts in
    /// throughput and latency.
    pub fn counts(&self, at: Duration) -> bool {
        match *self {
            Plan::Count(_) => true,
            Plan::Time { warmup, duration } => warmup <= at && at <= warmup + duration,
        }
    }

    /// The time the throughput is over, for a run that `ended` (its last
    /// answer) this long after its start.
    pub fn window(&self, ended: Duration) -> Duration {
        match *self {
            Plan::Count(_) => ended,
            Plan::Time { warmup, duration } => ended.min(warmup + duration).saturating_sub(warmup),
        }
    }
}

/// The figures of one run, as `bench --json` prints them.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Values proposed (decided plus errors).
    pub values: u64,
    /// Proposals kept in flight.
    pub concurrency: u32,
    /// Bytes per value.
    pub size: usize,
    /// Proposers in the cluster file.
    pub proposers: usize,
    /// Acceptors in the cluster file.
    pub acceptors: usize,
    /// From the first proposal to the last answer.
    pub elapsed_s: f64,
    /// Values decided per second.
    pub values_per_s: f64,
    /// Median latency of the decided values.
    pub p50_ms: f64,
    /// 99th percentile latency of the decided values.
    pub p99_ms: f64,
    /// Highest latency of a decided value.
    pub max_ms: f64,
    /// Values not decided (timed out or refused).
    pub errors: u64,
    /// Values counted in throughput and latency: all decided ones by count,
    /// those decided in the window after the warm-up by time.
    pub measured: u64,
    /// The warm-up by time, `None` by count.
    pub warmup_s: Option<f64>,
    /// The window by time, `None` by count.
    pub duration_s: Option<f64>,
}

impl Summary {
    /// The human summary line. By time, it says how many of the values
    /// proposed were decided in the window measured, after the warm-up:
    /// throughput and latency are theirs.
    pub fn line(&self) -> String {
        let what = format!(
            "{} values of {} B, {} in flight ({} proposers, {} acceptors)",
            self.values, self.size, self.concurrency, self.proposers, self.acceptors
        );
        let latency = format!(
            "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            self.p50_ms, self.p99_ms, self.max_ms, self.errors
        );
        match (self.warmup_s, self.duration_s) {
            (Some(warmup), Some(_)) => format!(
                "{what}; {} decided in the {:.2} s after a {warmup} s warm-up: {:.0} values/s; {latency}",
                self.measured, self.elapsed_s, self.values_per_s
            ),
            _ => format!("{what}: {:.2} s, {:.0} values/s; {latency}", self.elapsed_s, self.values_per_s),
        }
    }
}

/// The `i`th value of a run: `bench-<i>-xxx...`, exactly `size` bytes.
pub fn bench_value(i: u64, size: usize) -> String {
    let mut value = format!("bench-{i}-");
    value.truncate(size);
    value.extend(std::iter::repeat_n('x', size - value.len()));
    value
}

/// Rounds to three decimals, so that the JSON holds no noise digits.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs `paxosctl bench`.
///
/// # Errors
/// [`CtlError::Failed`] when no proposer answers (nothing was sent);
/// [`CtlError::Reported`] when some value was not decided.
pub async fn run(cluster: &ClusterConfig, args: BenchArgs, out: &mut Out) -> Result<(), CtlError> {
    let plan = args.plan()?;
    let lanes = match plan {
        Plan::Count(n) => u64::from(args.concurrency).min(n) as usize,
        Plan::Time { .. } => args.concurrency as usize,
    };
    let mut client = proposing_client(cluster, lanes, args.timeout).await?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
        .map_err(|e| CtlError::Failed(format!("cannot make the latency histogram: {e}")))?;
    let progress = progress_bar(plan);

    let started = Instant::now();
    let mut next = 0u64;
    let size = args.size;
    let mut errors = 0u64;
    let mut first_error = None;
    let produce = || {
        let i = next;
        plan.proposes(i, started.elapsed()).then(|| {
            next += 1;
            (i, bench_value(i, size))
        })
    };
    let record = |i: u64, latency: Duration, result: Result<Slot, ClientError>| {
        match result {
            Ok(_) if plan.counts(started.elapsed()) => {
                histogram.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some((i, e));
                }
                progress.set_message(format!("{errors} errors"));
            }
        }
        progress.inc(1);
    };
    client
        .run(produce, record)
        .await
        .map_err(|e| CtlError::Failed(format!("client socket failed: {}", describe(&e))))?;
    let window = plan.window(started.elapsed());
    progress.finish_and_clear();

    let ms = |us: u64| round3(us as f64 / 1000.0);
    let measured = histogram.len();
    let (warmup_s, duration_s) = match plan {
        Plan::Count(_) => (None, None),
        Plan::Time { warmup, duration } => (Some(round3(warmup.as_secs_f64())), Some(round3(duration.as_secs_f64()))),
    };
    let summary = Summary {
        values: next,
        concurrency: args.concurrency,
        size: args.size,
        proposers: cluster.proposers.len(),
        acceptors: cluster.acceptors.len(),
        elapsed_s: round3(window.as_secs_f64()),
        values_per_s: round3(measured as f64 / window.as_secs_f64().max(1e-9)),
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
        errors,
        measured,
        warmup_s,
        duration_s,
    };
    if args.json {
        let line = serde_json::to_string(&summary).map_err(|e| CtlError::Failed(format!("summary as JSON: {e}")))?;
        out.line(line)?;
    } else {
        out.line(summary.line())?;
    }
    if let Some((i, e)) = first_error {
        out.flush()?;
        diag(format_args!(
            "{errors} of {} values not decided; the first: value #{} {}: {}",
            summary.values,
            i + 1,
            quote(&bench_value(i, args.size)),
            describe(&e)
        ));
        return Err(CtlError::Reported);
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal; a hidden one otherwise,
/// so that logs and pipes get nothing but the summary.
/// By count the bar fills up to N values; by time it counts the values answered.
fn progress_bar(plan: Plan) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (total, template) = match plan {
        Plan::Count(n) => (Some(n), "{elapsed_precise} [{bar:40}] {pos}/{len} values, eta {eta} {msg}"),
        Plan::Time { .. } => (None, "{elapsed_precise} {pos} values answered {msg}"),
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_values_have_exactly_the_size_asked() {
        assert_eq!(bench_value(7, 12), "bench-7-xxxx");
        assert_eq!(bench_value(12345, 4), "benc");
        assert_eq!(bench_value(0, 0), "");
        assert_eq!(bench_value(3, MAX_VALUE_BYTES).len(), MAX_VALUE_BYTES);
    }

    #[test]
    fn the_summary_has_every_field_the_scripts_read() {
        let s = Summary {
            values: 10,
            concurrency: 2,
            size: 64,
            proposers: 2,
            acceptors: 5,
            elapsed_s: 0.5,
            values_per_s: 20.0,
            p50_ms: 1.5,
            p99_ms: 3.25,
            max_ms: 4.0,
            errors: 0,
            measured: 10,
            warmup_s: None,
            duration_s: None,
        };
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#"{"values":10,"concurrency":2,"size":64,"proposers":2,"acceptors":5,"elapsed_s":0.5,"values_per_s":20.0,"p50_ms":1.5,"p99_ms":3.25,"max_ms":4.0,"errors":0,"measured":10,"warmup_s":null,"duration_s":null}"#
        );
        assert_eq!(
            s.line(),
            "10 values of 64 B, 2 in flight (2 proposers, 5 acceptors): 0.50 s, 20 values/s; \
             latency p50 1.50 ms, p99 3.25 ms, max 4.00 ms; 0 errors"
        );
        // By time, the line says which values the rate and the latencies are of.
        let s = Summary { values: 14, measured: 10, warmup_s: Some(0.25), duration_s: Some(0.5), ..s };
        assert_eq!(
            s.line(),
            "14 values of 64 B, 2 in flight (2 proposers, 5 acceptors); 10 decided in the 0.50 s after a 0.25 s \
             warm-up: 20 values/s; latency p50 1.50 ms, p99 3.25 ms, max 4.00 ms; 0 errors"
        );
    }

    /// By time, a decision counts only inside the window after the warm-up,
    /// and the throughput is over that window even when the run ends early.
    #[test]
    fn by_time_only_the_window_after_the_warm_up_counts() {
        let ms = Duration::from_millis;
        let plan = Plan::Time { warmup: ms(200), duration: ms(1000) };
        assert!(!plan.counts(ms(199)));
        assert!(plan.counts(ms(200)) && plan.counts(ms(1200)));
        assert!(!plan.counts(ms(1201)));
        assert!(plan.proposes(1_000_000, ms(1199)) && !plan.proposes(0, ms(1200)));
        assert_eq!(plan.window(ms(1350)), ms(1000));
        assert_eq!(plan.window(ms(700)), ms(500));
        assert_eq!(plan.window(ms(100)), Duration::ZERO);
    }

    #[test]
    fn by_count_every_decision_counts_and_the_window_is_the_run() {
        let plan = Plan::Count(3);
        assert!(plan.proposes(2, Duration::ZERO) && !plan.proposes(3, Duration::ZERO));
        assert!(plan.counts(Duration::from_secs(100)));
        assert_eq!(plan.window(Duration::from_millis(5)), Duration::from_millis(5));
    }

    #[test]
    fn the_warm_up_may_be_zero_but_not_negative() {
        assert_eq!(parse_warmup("0"), Ok(Duration::ZERO));
        assert_eq!(parse_warmup("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_warmup("-1").is_err() && parse_warmup("x").is_err());
    }
}
