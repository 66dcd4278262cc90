//! Unix signals as [`Control`] commands for the node loop (SPEC.md, "Signals").
//!
//! | signal          | command                                            |
//! |-----------------|----------------------------------------------------|
//! | SIGTERM, SIGINT, SIGHUP | [`Control::Shutdown`]; a second one exits at once |
//! | SIGUSR1         | [`Control::Fail`]                                  |
//! | SIGUSR2         | [`Control::Recover`]                               |
//!
//! SIGHUP (the terminal that started the node closed) stops it as SIGTERM
//! does: a node has nothing to reload (membership comes from the log), and
//! the default action would end it without its stop line.
//!
//! signal-hook's iterator runs on its own thread and forwards each signal
//! into a channel that the loop selects on, so the loop itself only ever
//! sees ordinary messages.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::runtime::Control;

/// The exit code of a stop forced by a second SIGTERM, SIGINT or SIGHUP.
pub const FORCED_EXIT_CODE: i32 = 1;

/// Installs the handlers and returns the channel of commands they send.
///
/// # Errors
/// When the handlers cannot be registered or the thread cannot start.
pub fn install() -> io::Result<mpsc::UnboundedReceiver<Control>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            let command = match signal {
                SIGUSR1 => Control::Fail,
                SIGUSR2 => Control::Recover,
                _ if stopping => {
                    error!(signal, "second stop signal: exiting at once");
                    std::process::exit(FORCED_EXIT_CODE);
                }
                _ => {
                    stopping = true;
                    info!(signal, "stop signal: finishing the write in flight, then exiting");
                    Control::Shutdown
                }
            };
            if tx.send(command).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}
