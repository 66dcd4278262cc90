//! The floor this machine puts under a value's latency at concurrency 1: the
//! client's request to the leader and the leader's accept to an acceptor are
//! two loopback UDP round trips, and the acceptor's write is one fdatasync of
//! an append of about 300 bytes to its log. The logs are preallocated, so the
//! append is timed in a file written full beforehand (data only); an append
//! that grows the file (data and metadata: a journal commit) is timed too and
//! shown beside it. Measured in the same run as the table, on the filesystem
//! of the data dirs, so that the table can be read against it.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::stats::median;

/// Round trips timed (after as many untimed ones).
const UDP_SAMPLES: usize = 2000;
/// The size of each datagram, as a small bundle of ours.
const UDP_BYTES: usize = 128;
/// fdatasyncs timed.
const SYNC_SAMPLES: usize = 200;
/// Bytes appended before each fdatasync: about one accepted value and its record.
const SYNC_BYTES: usize = 300;

/// What was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floor {
    /// Median loopback UDP round trip, in ms.
    pub udp_rtt_ms: f64,
    /// Median fdatasync of an append into a preallocated file, in ms.
    pub fdatasync_ms: f64,
    /// Median fdatasync of an append that grows the file, in ms.
    pub fdatasync_growing_ms: f64,
}

impl Floor {
    /// The latency floor at concurrency 1: two round trips and one fdatasync.
    pub fn c1_ms(&self) -> f64 {
        2.0 * self.udp_rtt_ms + self.fdatasync_ms
    }

    /// The throughput that floor allows at concurrency 1.
    pub fn c1_values_per_s(&self) -> f64 {
        if self.c1_ms() > 0.0 {
            1000.0 / self.c1_ms()
        } else {
            f64::INFINITY
        }
    }

    /// How the report says it.
    pub fn describe(&self, fs: &str) -> String {
        format!(
            "2 × {:.3} ms (loopback UDP round trip, median of {UDP_SAMPLES}) + {:.3} ms (fdatasync of a \
             {SYNC_BYTES}-byte append to a preallocated file on {fs}, as the logs are written, median of \
             {SYNC_SAMPLES}) = {:.3} ms, at most {} values/s (an append that grows the file: {:.3} ms)",
            self.udp_rtt_ms,
            self.fdatasync_ms,
            self.c1_ms(),
            crate::stats::thousands(self.c1_values_per_s()),
            self.fdatasync_growing_ms
        )
    }
}

/// Measures both, the fdatasync in a file in `dir`.
///
/// # Errors
/// When a socket or the file cannot be used.
pub fn measure(dir: &Path) -> Result<Floor> {
    let (fdatasync_ms, fdatasync_growing_ms) = fdatasync_ms(dir)?;
    Ok(Floor { udp_rtt_ms: udp_rtt_ms()?, fdatasync_ms, fdatasync_growing_ms })
}

/// The median round trip of a datagram to an echo thread on 127.0.0.1.
fn udp_rtt_ms() -> Result<f64> {
    let echo = UdpSocket::bind("127.0.0.1:0").context("the echo socket")?;
    let client = UdpSocket::bind("127.0.0.1:0").context("the client socket")?;
    let to = echo.local_addr()?;
    echo.set_read_timeout(Some(Duration::from_secs(2)))?;
    client.set_read_timeout(Some(Duration::from_secs(2)))?;
    let echoer = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // An empty datagram, or silence, ends it.
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            if n == 0 || echo.send_to(&buf[..n], from).is_err() {
                break;
            }
        }
    });
    let payload = [7u8; UDP_BYTES];
    let mut buf = [0u8; 2048];
    let mut samples = Vec::with_capacity(UDP_SAMPLES);
    for i in 0..2 * UDP_SAMPLES {
        let sent = Instant::now();
        client.send_to(&payload, to).context("send to the echo")?;
        client.recv_from(&mut buf).context("no echo within 2 s")?;
        if i >= UDP_SAMPLES {
            samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let _ = client.send_to(&[], to);
    let _ = echoer.join();
    median(&samples).context("no UDP sample")
}

/// The median times of one fdatasync after an append of [`SYNC_BYTES`] to a
/// file in `dir` written full (and synced) beforehand, and to a growing one.
/// The two alternate, sample by sample, so that both see the same disk when
/// others share it.
fn fdatasync_ms(dir: &Path) -> Result<(f64, f64)> {
    let open = |name: &str| {
        let path = dir.join(name);
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
            .map(|f| (f, path))
    };
    let (mut preallocated, path_a) = open("floor-preallocated.tmp")?;
    let (mut growing, path_b) = open("floor-growing.tmp")?;
    preallocated.write_all(&vec![0u8; SYNC_BYTES * SYNC_SAMPLES + 4096]).context("preallocate")?;
    preallocated.sync_all().context("fsync")?;
    preallocated.seek(SeekFrom::Start(0)).context("seek")?;
    let record = [b'x'; SYNC_BYTES];
    let timed = |file: &mut File, samples: &mut Vec<f64>| -> Result<()> {
        file.write_all(&record).context("append")?;
        let t = Instant::now();
        file.sync_data().context("fdatasync")?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    };
    let (mut a, mut b) = (Vec::with_capacity(SYNC_SAMPLES), Vec::with_capacity(SYNC_SAMPLES));
    for _ in 0..SYNC_SAMPLES {
        timed(&mut preallocated, &mut a)?;
        timed(&mut growing, &mut b)?;
    }
    drop((preallocated, growing));
    let _ = std::fs::remove_file(&path_a);
    let _ = std::fs::remove_file(&path_b);
    Ok((median(&a).context("no fdatasync sample")?, median(&b).context("no fdatasync sample")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_two_round_trips_and_one_fdatasync() {
        let f = Floor { udp_rtt_ms: 0.025, fdatasync_ms: 0.45, fdatasync_growing_ms: 2.0 };
        assert!((f.c1_ms() - 0.5).abs() < 1e-12);
        assert!((f.c1_values_per_s() - 2000.0).abs() < 1e-9);
        assert!(f
            .describe("ext4")
            .ends_with("= 0.500 ms, at most 2,000 values/s (an append that grows the file: 2.000 ms)"));
    }
}
