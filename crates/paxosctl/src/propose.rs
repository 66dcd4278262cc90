//! `paxosctl propose [--json] [--timeout SECS] [--concurrency N] VALUE...`
//!
//! Appends each value to the log and prints, in the order given, the instance
//! it was decided at: `<instance>\t<value>` (a value that would not read
//! back as itself, e.g. one holding a newline, as a JSON string, as `log`
//! prints it), or `{"instance": 17, "value": "x"}` with `--json`. With `--concurrency 1` (the default) one client proposes the
//! values one after another, so a later value gets a higher instance
//! (SPEC.md, guarantee 5). With `--concurrency N`, N clients (each its own
//! random id, one request in flight each, all on one socket: [`MultiClient`](crate::multi::MultiClient))
//! pull values from the list; lines still come out in the order given, each
//! as soon as it and every value before it are decided.
//!
//! Every value is checked against [`MAX_VALUE_BYTES`] before anything is sent
//! (exit 2). A value that is not decided within `--timeout` (it may still be
//! decided later, exactly once) or that the cluster refuses gets one line on
//! stderr, and the exit code is 1.

use std::time::Duration;

use clap::Args;
use paxos_proto::{Slot, MAX_VALUE_BYTES};

use super::{describe, diag, proposing_client, quote, CtlError, Out};
use paxos_client::client::ClientError;
use paxos_client::config::ClusterConfig;

/// The arguments of `paxosctl propose`.
#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Print one JSON object per value: {"instance": 17, "value": "x"}.
    #[arg(long)]
    pub json: bool,
    /// Give up on a value that is not decided after this many seconds (it may still be decided later, once).
    #[arg(long, value_name = "SECS", value_parser = super::parse_secs, default_value = "10")]
    pub timeout: Duration,
    /// Propose through N clients at once, each with one request in flight (1: strictly one after another).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// The values: UTF-8 strings of at most 8 KiB each.
    #[arg(value_name = "VALUE", required = true)]
    pub values: Vec<String>,
}

impl ProposeArgs {
    /// Refuses an oversized value before anything is sent.
    ///
    /// # Errors
    /// [`CtlError::Usage`] naming the first value over [`MAX_VALUE_BYTES`].
    pub fn check(&self) -> Result<(), CtlError> {
        match self.values.iter().enumerate().find(|(_, v)| v.len() > MAX_VALUE_BYTES) {
            Some((i, v)) => Err(CtlError::Usage(format!(
                "value #{} {} is {} bytes, over the limit of {MAX_VALUE_BYTES} bytes; nothing was sent",
                i + 1,
                quote(v),
                v.len()
            ))),
            None => Ok(()),
        }
    }
}

/// The line `propose` prints for `value` decided at `slot`: as `log` prints
/// it, so a value that would not read back as itself (empty, starting with
/// `"`, holding a tab or a newline) is a JSON string and one value stays one line.
pub fn format_decided(slot: Slot, value: &str, json: bool) -> String {
    if json {
        crate::log::json_entry(slot.0, Some(value))
    } else if crate::log::ambiguous(value) {
        format!("{slot}\t{}", serde_json::to_string(value).unwrap_or_default())
    } else {
        format!("{slot}\t{value}")
    }
}

/// Runs `paxosctl propose`.
///
/// # Errors
/// [`CtlError::Failed`] when no proposer answers at all (nothing was sent),
/// [`CtlError::Reported`] when some value was not decided.
pub async fn run(cluster: &ClusterConfig, args: ProposeArgs, out: &mut Out) -> Result<(), CtlError> {
    let values = args.values;
    let lanes = (args.concurrency as usize).min(values.len());
    let mut client = proposing_client(cluster, lanes, args.timeout).await?;

    // Results arrive in any order; lines leave in the order given.
    let mut results: Vec<Option<Result<Slot, ClientError>>> = Vec::new();
    results.resize_with(values.len(), || None);
    let mut printed = 0;
    let mut failed = 0usize;
    let mut out_error = None;
    // Once stdout fails (say, `| head -1`), no new value is proposed.
    let stop = std::cell::Cell::new(false);
    let mut next = 0usize;
    let produce = || {
        if stop.get() {
            return None;
        }
        let i = next;
        next += 1;
        values.get(i).map(|v| (i as u64, v.clone()))
    };
    let record = |i: u64, _latency, result| {
        results[i as usize] = Some(result);
        while let Some(result) = results.get_mut(printed).and_then(Option::take) {
            let value = &values[printed];
            let written = match result {
                Ok(slot) => out.line(format_decided(slot, value, args.json)),
                Err(e) => {
                    failed += 1;
                    // The failure shows after the lines of the values before it.
                    let flushed = out.flush();
                    diag(format_args!("value #{} {}: {}", printed + 1, quote(value), describe(&e)));
                    flushed
                }
            };
            if let Err(e) = written.and_then(|()| out.flush()) {
                out_error.get_or_insert(e);
                stop.set(true);
            }
            printed += 1;
        }
    };
    client
        .run(produce, record)
        .await
        .map_err(|e| CtlError::Failed(format!("client socket failed: {}", describe(&e))))?;
    if let Some(e) = out_error {
        return Err(e);
    }
    if printed < values.len() {
        // Every value is reported once; this is a bug of ours if not.
        return Err(CtlError::Failed(format!("{} values got no answer", values.len() - printed)));
    }
    if failed > 0 {
        return Err(CtlError::Reported);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_client::client::DEFAULT_TIMEOUT;

    #[test]
    fn decided_values_print_as_instance_tab_value_or_json() {
        assert_eq!(format_decided(Slot(17), "x", false), "17\tx");
        assert_eq!(format_decided(Slot(17), "x", true), r#"{"instance": 17, "value": "x"}"#);
        // As `log` prints them: one line per value that reads back as itself.
        assert_eq!(format_decided(Slot(5), "line1\nline2", false), "5\t\"line1\\nline2\"");
        assert_eq!(format_decided(Slot(5), "\"q", false), "5\t\"\\\"q\"");
        assert_eq!(format_decided(Slot(5), "", false), "5\t\"\"");
        assert_eq!(format_decided(Slot(0), "a\"b\n", true), r#"{"instance": 0, "value": "a\"b\n"}"#);
    }

    #[test]
    fn an_oversized_value_is_a_usage_error() {
        let args = ProposeArgs {
            json: false,
            timeout: DEFAULT_TIMEOUT,
            concurrency: 1,
            values: vec!["ok".into(), "x".repeat(MAX_VALUE_BYTES + 1), "y".repeat(MAX_VALUE_BYTES)],
        };
        match args.check() {
            Err(CtlError::Usage(line)) => assert!(line.starts_with("value #2 \"xxx"), "{line}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
        let fits = ProposeArgs { values: vec!["y".repeat(MAX_VALUE_BYTES)], ..args };
        assert!(fits.check().is_ok());
    }
}
