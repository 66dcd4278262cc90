//! `etcd-bench --endpoints A,B,C (--values N | --duration S [--warmup S]) --concurrency C [--size B] [--json]`
//!
//! The etcd side of `scripts/bench.sh --vs etcd`: the workload of
//! `paxosctl bench`, driven against an etcd cluster, so that both systems are
//! measured by the same yardstick in the same run on the same machine.
//!
//! It keeps C PUTs in flight (C workers, one request each, sharing `--conns`
//! gRPC connections) until N values of B bytes are written or have failed, or,
//! by time, until `--warmup` plus `--duration` seconds have passed; then only
//! the PUTs answered in the window after the warm-up count in throughput and
//! latency, as in `paxosctl bench --duration`. Each
//! value goes to its own key (`bench/<run>/<i>`), so that every PUT is a new
//! entry in etcd's replicated log, as every proposal is a new instance in ours.
//! Values are the same strings as paxosctl's: `bench-<i>-xxx...`, B bytes. Each
//! latency, from the call to the answer, goes into an HDR histogram
//! (microseconds, three significant digits), as in paxosctl.
//!
//! Dead endpoints are allowed (the benchmark kills 2 of 5 members): each one is
//! asked for its status first, the ones that do not answer within a second are
//! left out, and the PUTs go to the leader (as paxosctl sends to the leading
//! proposer), or with `--all-endpoints` round-robin to every live member, as
//! etcd's own clients do.
//!
//! It ends with one line, or with `--json` one JSON object of the shape that
//! `paxosctl bench --json` prints:
//! `{"values":N,"concurrency":C,"size":B,"proposers":P,"acceptors":A,
//! "elapsed_s":..,"values_per_s":..,"p50_ms":..,"p99_ms":..,"max_ms":..,"errors":..,
//! "measured":M,"warmup_s":W,"duration_s":D}`
//! where `proposers` counts the members the PUTs were sent to and `acceptors`
//! the members named in `--endpoints`; `elapsed_s` is the time the throughput is
//! over (the window, by time) and `measured` the PUTs counted in it. Exit 1 when any PUT failed, with one line
//! on stderr naming the first.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use etcd_client::{Client, ConnectOptions, KvClient};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;

/// The highest latency the histogram tells apart, in microseconds (one hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// How long a member has to answer the status probe before it counts as dead.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest value paxosctl accepts; the same limit keeps the workloads alike.
const MAX_VALUE_BYTES: usize = 8192;

/// The arguments.
#[derive(Debug, Parser)]
#[command(version, about = "Drive etcd with the workload of `paxosctl bench`.")]
struct Args {
    /// The members' client URLs, comma-separated (`127.0.0.1:2379` or
    /// `http://127.0.0.1:2379`); dead ones are detected and left out.
    #[arg(long, value_delimiter = ',', required = true, value_name = "A,B,..")]
    endpoints: Vec<String>,
    /// How many values to write (a run by count; or give --duration).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        required_unless_present = "duration",
        conflicts_with_all = ["duration", "warmup"]
    )]
    values: Option<u64>,
    /// Write for this many seconds after the warm-up (a run by time): only the
    /// PUTs answered in that window count in throughput and latency.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// With --duration: load for this many seconds first, counted in neither
    /// throughput nor latency (default 0).
    #[arg(long, value_name = "SECS")]
    warmup: Option<f64>,
    /// How many PUTs to keep in flight.
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// The size of each value in bytes (at most 8192, as for paxosctl).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    size: usize,
    /// How many gRPC connections the workers share (default: min(C, 16)).
    #[arg(long, value_name = "K")]
    conns: Option<usize>,
    /// Send round-robin to every live member instead of the leader only.
    #[arg(long)]
    all_endpoints: bool,
    /// Count a PUT as an error when it has no answer after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Tokio worker threads of the load generator (default: one per core).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Print one JSON object with the figures instead of the summary line.
    #[arg(long)]
    json: bool,
}

/// The figures of one run, field for field those of `paxosctl bench --json`.
#[derive(Debug, Serialize)]
struct Summary {
    /// Values written (answered plus errors).
    values: u64,
    /// PUTs kept in flight.
    concurrency: u32,
    /// Bytes per value.
    size: usize,
    /// Members the PUTs were sent to.
    proposers: usize,
    /// Members named in `--endpoints`, dead or alive.
    acceptors: usize,
    /// From the first PUT to the last answer.
    elapsed_s: f64,
    /// Values written per second.
    values_per_s: f64,
    /// Median latency of the successful PUTs.
    p50_ms: f64,
    /// 99th percentile latency of the successful PUTs.
    p99_ms: f64,
    /// Highest latency of a successful PUT.
    max_ms: f64,
    /// PUTs that failed or timed out.
    errors: u64,
    /// PUTs counted in throughput and latency.
    measured: u64,
    /// The warm-up by time, `None` by count.
    warmup_s: Option<f64>,
    /// The window by time, `None` by count.
    duration_s: Option<f64>,
}

/// How a run ends, and which answers count (as in `paxosctl bench`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// Until this many values are written or have failed; every answer counts.
    Count(u64),
    /// New PUTs until `warmup + duration`; the answers in the window after the warm-up count.
    Time { warmup: Duration, duration: Duration },
}

impl Plan {
    /// Whether the `i`th value may still be written, `since` the start.
    fn proposes(&self, i: u64, since: Duration) -> bool {
        match *self {
            Plan::Count(n) => i < n,
            Plan::Time { warmup, duration } => since < warmup + duration,
        }
    }

    /// Whether a PUT answered `at` this time since the start counts.
    fn counts(&self, at: Duration) -> bool {
        match *self {
            Plan::Count(_) => true,
            Plan::Time { warmup, duration } => warmup <= at && at <= warmup + duration,
        }
    }

    /// The time the throughput is over, for a run whose last answer came `ended` after its start.
    fn window(&self, ended: Duration) -> Duration {
        match *self {
            Plan::Count(_) => ended,
            Plan::Time { warmup, duration } => ended.min(warmup + duration).saturating_sub(warmup),
        }
    }
}

/// A positive number of seconds (or zero, when `zero` is allowed) as a duration.
fn seconds(flag: &str, secs: f64, zero: bool) -> anyhow::Result<Duration> {
    if !secs.is_finite() || secs < 0.0 || (secs == 0.0 && !zero) || secs > 86_400.0 {
        bail!("{flag} {secs}: must be a positive number of seconds, at most 86400");
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Summary {
    /// The human summary line, worded as paxosctl's.
    fn line(&self) -> String {
        format!(
            "{} values of {} B, {} in flight ({} of {} etcd members driven): {:.2} s, {:.0} values/s; \
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            self.values,
            self.size,
            self.concurrency,
            self.proposers,
            self.acceptors,
            self.elapsed_s,
            self.values_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.errors
        )
    }
}

/// The `i`th value of a run: `bench-<i>-xxx...`, exactly `size` bytes (as
/// paxosctl's `bench_value`).
fn bench_value(i: u64, size: usize) -> String {
    let mut value = format!("bench-{i}-");
    value.truncate(size);
    value.extend(std::iter::repeat_n('x', size - value.len()));
    value
}

/// Rounds to three decimals, so that the JSON holds no noise digits.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `host:port` becomes `http://host:port`; a URL stays as it is.
fn endpoint_url(e: &str) -> String {
    if e.contains("://") {
        e.to_string()
    } else {
        format!("http://{e}")
    }
}

/// A live member: its URL, its id, and the leader it knows.
struct Member {
    url: String,
    id: u64,
    leader: u64,
}

/// Asks every endpoint for its status at once; the ones that answer in time.
async fn probe(endpoints: &[String]) -> Vec<Member> {
    let probes = endpoints.iter().map(|url| {
        let url = url.clone();
        tokio::spawn(async move {
            let options = ConnectOptions::new().with_connect_timeout(PROBE_TIMEOUT).with_timeout(PROBE_TIMEOUT);
            let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
                let mut client = Client::connect([url.as_str()], Some(options)).await?;
                client.status().await
            })
            .await;
            match answer {
                Ok(Ok(status)) => {
                    Some(Member { id: status.header().map_or(0, |h| h.member_id()), leader: status.leader(), url })
                }
                _ => None,
            }
        })
    });
    let mut live = Vec::new();
    for p in probes.collect::<Vec<_>>() {
        if let Ok(Some(member)) = p.await {
            live.push(member);
        }
    }
    live
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.size > MAX_VALUE_BYTES {
        bail!("--size {}: over the limit of {MAX_VALUE_BYTES} bytes per value; nothing was sent", args.size);
    }
    let timeout = seconds("--timeout", args.timeout, false)?;
    let plan = match (args.values, args.duration) {
        (Some(n), None) => Plan::Count(n),
        (None, Some(d)) => Plan::Time {
            warmup: seconds("--warmup", args.warmup.unwrap_or(0.0), true)?,
            duration: seconds("--duration", d, false)?,
        },
        _ => bail!("give either --values N or --duration SECS; nothing was sent"),
    };
    let endpoints: Vec<String> = args.endpoints.iter().map(|e| endpoint_url(e)).collect();
    let live = probe(&endpoints).await;
    if live.is_empty() {
        bail!("no etcd member answered at {}; nothing was sent", endpoints.join(","));
    }
    let targets: Vec<String> = if args.all_endpoints {
        live.iter().map(|m| m.url.clone()).collect()
    } else {
        let leader = live
            .iter()
            .find(|m| m.leader != 0 && m.id == m.leader)
            .with_context(|| format!("no live member is the leader ({} live); nothing was sent", live.len()))?;
        vec![leader.url.clone()]
    };

    let workers = match plan {
        Plan::Count(n) => u64::from(args.concurrency).min(n) as usize,
        Plan::Time { .. } => args.concurrency as usize,
    };
    let conns = args.conns.unwrap_or(16).clamp(1, workers.max(1));
    let mut kvs: Vec<KvClient> = Vec::with_capacity(conns);
    for _ in 0..conns {
        let options = ConnectOptions::new().with_connect_timeout(PROBE_TIMEOUT).with_timeout(timeout);
        let client = Client::connect(&targets, Some(options))
            .await
            .with_context(|| format!("cannot connect to {}", targets.join(",")))?;
        kvs.push(client.kv_client());
    }
    // Every connection warmed up (HTTP/2 handshake done) before the clock starts,
    // as paxosctl's clients have their sockets bound before it starts its own.
    for kv in &mut kvs {
        kv.get("bench/warmup", None).await.context("the warm-up GET")?;
    }

    let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    // (value, latency, answered since the start, result)
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Duration, Duration, Result<(), etcd_client::Error>)>();
    for w in 0..workers {
        let mut kv = kvs[w % conns].clone();
        let (next, tx, size) = (Arc::clone(&next), tx.clone(), args.size);
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if !plan.proposes(i, started.elapsed()) {
                    break;
                }
                let key = format!("bench/{run_id}/{i}");
                let value = bench_value(i, size);
                let sent = Instant::now();
                let result = match tokio::time::timeout(timeout, kv.put(key, value, None)).await {
                    Ok(r) => r.map(|_| ()),
                    Err(_) => Err(etcd_client::Error::InvalidArgs(format!("no answer within {timeout:?}"))),
                };
                if tx.send((i, sent.elapsed(), started.elapsed(), result)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut errors = 0u64;
    let mut answered = 0u64;
    let mut first_error = None;
    while let Some((i, latency, at, result)) = rx.recv().await {
        answered += 1;
        match result {
            Ok(()) if plan.counts(at) => {
                histogram.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Ok(()) => {}
            Err(e) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some((i, e));
                }
            }
        }
    }
    let window = plan.window(started.elapsed());

    let ms = |us: u64| round3(us as f64 / 1000.0);
    let (warmup_s, duration_s) = match plan {
        Plan::Count(_) => (None, None),
        Plan::Time { warmup, duration } => (Some(round3(warmup.as_secs_f64())), Some(round3(duration.as_secs_f64()))),
    };
    let summary = Summary {
        values: answered,
        concurrency: args.concurrency,
        size: args.size,
        proposers: targets.len(),
        acceptors: endpoints.len(),
        elapsed_s: round3(window.as_secs_f64()),
        values_per_s: round3(histogram.len() as f64 / window.as_secs_f64().max(1e-9)),
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
        errors,
        measured: histogram.len(),
        warmup_s,
        duration_s,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.line());
    }
    if let Some((i, e)) = first_error {
        eprintln!("etcd-bench: {errors} of {answered} PUTs failed; the first: value #{}: {e}", i + 1);
        return Ok(false);
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = args.threads {
        builder.worker_threads(t.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("etcd-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    runtime.shutdown_background();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("etcd-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_those_of_paxosctl() {
        assert_eq!(bench_value(7, 12), "bench-7-xxxx");
        assert_eq!(bench_value(12345, 4), "benc");
        assert_eq!(bench_value(3, 64).len(), 64);
    }

    #[test]
    fn by_time_only_the_window_after_the_warm_up_counts() {
        let ms = Duration::from_millis;
        let plan = Plan::Time { warmup: ms(200), duration: ms(1000) };
        assert!(!plan.counts(ms(199)) && plan.counts(ms(200)) && plan.counts(ms(1200)) && !plan.counts(ms(1201)));
        assert!(plan.proposes(u64::MAX, ms(1199)) && !plan.proposes(0, ms(1200)));
        assert_eq!((plan.window(ms(1400)), plan.window(ms(700))), (ms(1000), ms(500)));
        assert!(Plan::Count(3).proposes(2, ms(9)) && !Plan::Count(3).proposes(3, ms(0)));
        assert!(seconds("--warmup", 0.0, true).is_ok() && seconds("--duration", 0.0, false).is_err());
    }

    #[test]
    fn bare_endpoints_get_a_scheme() {
        assert_eq!(endpoint_url("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(endpoint_url("http://127.0.0.1:2379"), "http://127.0.0.1:2379");
    }
}
