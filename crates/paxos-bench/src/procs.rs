//! Running other programs, and stopping cleanly on Ctrl-C: SIGINT and SIGTERM
//! only raise a flag, the children (in our process group) get the signal too
//! and end, and the tool then returns an error through every guard, which
//! tears its clusters down.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Raised by SIGINT or SIGTERM.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM raise the flag that [`check`] reads,
/// instead of ending the tool before it has torn its clusters down.
pub fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Fails once the tool was interrupted.
///
/// # Errors
/// After SIGINT or SIGTERM.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps for `d`, in slices, so that an interrupt is seen within 50 ms.
///
/// # Errors
/// When interrupted.
pub fn sleep(d: Duration) -> Result<()> {
    let slice = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() {
        check()?;
        let step = left.min(slice);
        std::thread::sleep(step);
        left -= step;
    }
    check()
}

/// Runs `cmd` to its end with no input, and returns what it printed.
///
/// # Errors
/// When it cannot be started, or the tool was interrupted meanwhile.
pub fn output(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {what}"))?;
    check()?;
    Ok(out)
}

/// Runs `cmd` and returns its stdout; it must exit 0.
///
/// # Errors
/// When it cannot be started or fails (its stderr is in the error).
pub fn run_ok(cmd: &mut Command, what: &str) -> Result<String> {
    let out = output(cmd, what)?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes sure the command `cmd` is there, installing the Debian `package`
/// with apt-get when it is missing (as root, or through sudo).
///
/// # Errors
/// When it is still missing after that.
pub fn need(cmd: &str, package: &str) -> Result<()> {
    if on_path(cmd) {
        return Ok(());
    }
    eprintln!("paxos-bench: {cmd} is missing; installing the Debian package {package}");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null()).stdout(Stdio::null());
        c.status().map(|s| s.success()).unwrap_or(false)
    };
    let _ = apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", package]);
    check()?;
    if !on_path(cmd) {
        bail!("{cmd} is missing and could not be installed (apt-get install {package})");
    }
    Ok(())
}

/// Whether `cmd` is an executable in `$PATH`.
pub fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(cmd)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
