//! Ctrl-C and SIGTERM (what Slurm sends at a job's time limit): the first asks a run to stop
//! cleanly (its finished shards are kept, nothing half-written is left, the same command
//! resumes it) and says so at once; a second ends the process there and then.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A flag that the first Ctrl-C or SIGTERM sets.
pub(crate) fn stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let set = Arc::clone(&flag);
    std::thread::Builder::new()
        .name("latam-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                if set.swap(true, Ordering::SeqCst) {
                    std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
                }
                eprintln!(
                    "\nstopping: the shard under way is dropped, the finished ones are kept \
                     (press Ctrl-C again to quit at once)"
                );
            }
        })?;
    Ok(flag)
}
