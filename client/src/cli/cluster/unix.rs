//! The few system calls `cluster local` needs that std does not offer: waiting for stop
//! signals, sending SIGTERM to a node, and asking whether a data directory's lock is held.
//! This is the only module of the `quorder` binary with `unsafe` code.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};

/// Signals that stop the supervisor: Ctrl-C and the service manager's stop.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset only write the set we own; it is initialised by
    // sigemptyset before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards,
/// and starts a thread that takes them with sigwait and sends each signal number to the
/// returned channel. Call it before any other thread exists, or a signal may be delivered
/// to a thread that does not block it and kill the process with its default action.
/// Children started later get an empty signal mask (std resets it on spawn).
pub fn stop_signal_channel() -> Result<Receiver<i32>, String> {
    let set = stop_signals();
    // SAFETY: the set is initialised; the previous mask is not needed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(format!("cannot block stop signals (error {result})"));
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("quorder-signals".into())
        .spawn(move || loop {
            let set = stop_signals();
            let mut signal = 0;
            // SAFETY: sigwait reads the initialised set and writes the signal number into
            // a local that outlives the call.
            let result = unsafe { libc::sigwait(&set, &mut signal) };
            if result == 0 && sender.send(signal).is_err() {
                return;
            }
        })
        .map_err(|error| format!("cannot start the signal thread: {error}"))?;
    Ok(receiver)
}

/// Sends `signal` to the process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) takes plain integers; a pid that is gone yields ESRCH, not UB.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True if a process holds the daemon's lock on `lock_path` (a `quorderd` runs on that
/// data directory). The daemon takes the lock with flock, which the kernel drops when the
/// process dies, so unlike the PID written in the file the answer is never stale.
pub fn lock_is_held(lock_path: &Path) -> io::Result<bool> {
    let file = match File::open(lock_path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    // SAFETY: flock on a descriptor this function owns; closing the file on return
    // releases a lock taken here.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if result == 0 {
        return Ok(false);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(true)
    } else {
        Err(error)
    }
}
