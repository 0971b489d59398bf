//! Start-up checks and the data directory's guard: a lock file that keeps a second
//! daemon off the same data, the cluster shape stored with the data, and host checks that
//! fail with a message saying how to fix the problem.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the lock file in the data directory; it holds the daemon's PID.
pub const LOCK_FILE: &str = "quorderd.lock";
/// Name of the file that records the data directory's shape.
pub const SHAPE_FILE: &str = "shape.toml";

/// Why the node refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Another process holds the lock.
    #[error("data directory {dir} is in use by another quorderd (pid {pid}); stop it first or use another --data-dir")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// PID found in the lock file.
        pid: String,
    },
    /// The data directory cannot be created or written.
    #[error("data directory {dir} is not writable: {source}; create it or fix its permissions")]
    NotWritable {
        /// The data directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data was created with another shard or core count.
    #[error("data directory {dir} was created with {key} = {stored}, but {key} = {asked} was asked; the {key} count is fixed when the data is created (use the same value, or another --data-dir)")]
    ShapeMismatch {
        /// The data directory.
        dir: PathBuf,
        /// `shards` or `cores`.
        key: &'static str,
        /// Value stored with the data.
        stored: u32,
        /// Value asked now.
        asked: u32,
    },
    /// The shape file is damaged.
    #[error("{path} is damaged ({reason}); restore it or move the data directory aside")]
    BadShape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// io_uring is switched off on this host.
    #[error("io_uring is disabled on this host (kernel.io_uring_disabled = {value}); run `sysctl -w kernel.io_uring_disabled=0`")]
    IoUringDisabled {
        /// The sysctl value.
        value: String,
    },
    /// The locked-memory limit is too low for the io_uring buffers.
    #[error("locked-memory limit is {limit_bytes} bytes but quorderd needs {needed_bytes} for {cores} cores; raise it (`ulimit -l unlimited`, or LimitMEMLOCK=infinity in the systemd unit)")]
    MemlockTooLow {
        /// Current soft limit.
        limit_bytes: u64,
        /// Needed.
        needed_bytes: u64,
        /// Cores asked.
        cores: u32,
    },
}

/// Holds the data directory's lock for the life of the process. The kernel drops the
/// lock when the process dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// Creates the data directory if needed, checks it is writable and takes its lock.
pub fn lock_data_dir(dir: &Path) -> Result<DataLock, StartupError> {
    let not_writable = |source| StartupError::NotWritable {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(not_writable)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = if pid.trim().is_empty() {
            "unknown".to_string()
        } else {
            pid.trim().to_string()
        };
        return Err(StartupError::Locked {
            dir: dir.to_path_buf(),
            pid,
        });
    }
    file.set_len(0).map_err(not_writable)?;
    file.rewind().map_err(not_writable)?;
    writeln!(file, "{}", std::process::id()).map_err(not_writable)?;
    file.sync_all().map_err(not_writable)?;
    Ok(DataLock { _file: file })
}

/// Records the shard and core counts with new data, or checks them against old data.
pub fn check_shape(dir: &Path, shards: u32, cores: u32) -> Result<(), StartupError> {
    let path = dir.join(SHAPE_FILE);
    let bad = |reason: String| StartupError::BadShape {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored: toml::Table = text
                .parse()
                .map_err(|error: toml::de::Error| bad(error.to_string()))?;
            for (key, asked) in [("shards", shards), ("cores", cores)] {
                let value = stored.get(key).and_then(|value| value.as_integer());
                let stored = value.ok_or_else(|| bad(format!("no integer `{key}`")))?;
                if stored != i64::from(asked) {
                    let stored = u32::try_from(stored).unwrap_or(u32::MAX);
                    return Err(StartupError::ShapeMismatch {
                        dir: dir.to_path_buf(),
                        key,
                        stored,
                        asked,
                    });
                }
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let text = format!("# written by quorderd when this data directory was created\nshards = {shards}\ncores = {cores}\n");
            write_durably(dir, &path, text.as_bytes()).map_err(|source| StartupError::NotWritable {
                dir: dir.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(StartupError::NotWritable {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}

fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

/// Locked memory each glommio executor asks for (three times its io memory).
pub const EXECUTOR_LOCKED_BYTES: u64 = 3 * 10 * 1024 * 1024;

/// Host checks: io_uring enabled, locked-memory limit high enough.
pub fn check_host(cores: u32) -> Result<(), StartupError> {
    if let Ok(value) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        let value = value.trim().to_string();
        if value != "0" {
            return Err(StartupError::IoUringDisabled { value });
        }
    }
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass, which lives for the call.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    let needed_bytes = EXECUTOR_LOCKED_BYTES * u64::from(cores);
    if known && !is_root && limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < needed_bytes {
        return Err(StartupError::MemlockTooLow {
            limit_bytes: limit.rlim_cur,
            needed_bytes,
            cores,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("quorder-startup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn second_lock_is_refused_with_the_pid() {
        let dir = scratch("lock");
        let first = lock_data_dir(&dir).expect("first lock");
        let second = lock_data_dir(&dir).expect_err("second lock");
        assert!(
            second.to_string().contains(&std::process::id().to_string()),
            "{second}"
        );
        drop(first);
        lock_data_dir(&dir).expect("lock again after release");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shape_is_fixed_at_creation() {
        let dir = scratch("shape");
        std::fs::create_dir_all(&dir).expect("dir");
        check_shape(&dir, 8, 2).expect("create");
        check_shape(&dir, 8, 2).expect("same shape");
        let error = check_shape(&dir, 16, 2).expect_err("other shard count");
        assert!(error.to_string().contains("shards = 8"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
