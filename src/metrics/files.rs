//! Open-once, re-read-often pseudo-files: a file descriptor kept open and
//! read from offset 0 with `pread` into one reused buffer.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// A source file: open, or known to be missing (never retried until the
/// container's cgroup is resolved again).
#[derive(Debug)]
pub(crate) enum Src {
    Missing,
    Open(File),
}

/// Set when an open failed for lack of file descriptors (`EMFILE`/`ENFILE`).
static FD_EXHAUSTED: AtomicBool = AtomicBool::new(false);

/// Descriptors the collector leaves to everything else: the :8000 server's
/// connections, the Docker and upload sockets, the scans' transient opens.
/// Without them a host with more containers than the open-files limit
/// allows would leave the agent unable to accept a single scrape.
pub const FD_RESERVE: u64 = 256;

/// The collector keeps no descriptor numbered at or above this (the kernel
/// hands out the lowest free number, so the number tells how many are open).
static FD_CEILING: AtomicI32 = AtomicI32::new(i32::MAX);

/// Sets the ceiling from the open-files limit, [`FD_RESERVE`] below it.
pub fn set_fd_limit(limit: u64) {
    let ceiling = limit.saturating_sub(FD_RESERVE).clamp(16, i32::MAX as u64);
    FD_CEILING.store(ceiling as i32, Ordering::Relaxed);
}

/// Whether the collector may keep `fd` open (it is below the ceiling).
pub(crate) fn may_keep(fd: &impl AsRawFd) -> bool {
    fd.as_raw_fd() < FD_CEILING.load(Ordering::Relaxed)
}

/// `fd` if the collector may keep it; else it is closed and counted as a
/// lack of descriptors.
pub(crate) fn keep<F: AsRawFd>(fd: F) -> Option<F> {
    if !may_keep(&fd) {
        FD_EXHAUSTED.store(true, Ordering::Relaxed);
        return None;
    }
    Some(fd)
}

/// True (once) when an open failed for lack of file descriptors since the last call.
pub(crate) fn take_fd_exhausted() -> bool {
    FD_EXHAUSTED.swap(false, Ordering::Relaxed)
}

impl Src {
    pub(crate) fn open(path: &Path) -> Src {
        match File::open(path) {
            Ok(f) => keep(f).map_or(Src::Missing, Src::Open),
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    FD_EXHAUSTED.store(true, Ordering::Relaxed);
                }
                Src::Missing
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Src::Open(_))
    }
}

/// What a read gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `n` bytes are in the buffer.
    Ok(usize),
    /// The file does not exist for this container (remembered at open time).
    Missing,
    /// The cgroup or process vanished (`ENODEV`, `ENOENT`, `ESRCH`): the container is gone.
    Gone,
    /// Any other error: this metric is skipped this cycle.
    Failed,
}

/// Below this many bytes, a read of a multi-record seq_file (`net/dev`,
/// `net/tcp`) has reached the end: the kernel fills at least a page minus
/// one record per read while records remain.
const SEQ_SHORT_READ: usize = 2048;

/// The buffer's size at start.
const INITIAL_BUF: usize = 32 * 1024;

/// The largest single-show file read (a `cgroup.procs` of some 130 000
/// PIDs); a larger one is unusable, not read on.
pub(crate) const MAX_SINGLE_SHOW: usize = 1 << 20;

/// The largest multi-record file read (a `net/tcp` of some 28 000 sockets).
pub(crate) const MAX_MULTI_RECORD: usize = 4 << 20;

/// The one buffer every file is read into.
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    /// Reads whose content was unusable (an I/O error other than "gone",
    /// a file over the size limit, no final newline, or text that does not
    /// parse), since start.
    pub(crate) unusable: u64,
}

impl ReadBuf {
    pub(crate) fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; INITIAL_BUF],
            unusable: 0,
        }
    }

    /// Reads the whole of `src` from offset 0. Single-show files (every
    /// cgroup file) take one `pread` unless they fill the buffer;
    /// `multi_record` files continue until a short read. A file at or over
    /// [`MAX_SINGLE_SHOW`] ([`MAX_MULTI_RECORD`]) bytes, or whose text does
    /// not end in a newline (every kernel file does: it was cut short), is
    /// `Failed` and counted in `unusable`.
    pub(crate) fn read(&mut self, src: &Src, multi_record: bool) -> Outcome {
        let out = self.read_whole(src, multi_record);
        if out == Outcome::Failed {
            self.unusable += 1;
        }
        out
    }

    fn read_whole(&mut self, src: &Src, multi_record: bool) -> Outcome {
        let Src::Open(f) = src else {
            return Outcome::Missing;
        };
        let cap = if multi_record {
            MAX_MULTI_RECORD
        } else {
            MAX_SINGLE_SHOW
        };
        let mut filled = 0usize;
        loop {
            if filled == self.buf.len() {
                if filled >= cap {
                    // Not a kernel file of any size seen: drop what it grew.
                    self.buf = vec![0; INITIAL_BUF];
                    return Outcome::Failed;
                }
                // Growth happens during warm-up only: the buffer keeps its size.
                let n = (self.buf.len() * 2).min(cap);
                self.buf.resize(n, 0);
            }
            let Some(dst) = self.buf.get_mut(filled..) else {
                return Outcome::Failed;
            };
            match f.read_at(dst, filled as u64) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    if filled < self.buf.len() && (!multi_record || n < SEQ_SHORT_READ) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return classify(&e),
            }
        }
        if filled >= cap || (filled > 0 && self.buf.get(filled - 1) != Some(&b'\n')) {
            return Outcome::Failed;
        }
        Outcome::Ok(filled)
    }

    pub(crate) fn bytes(&self, n: usize) -> &[u8] {
        self.buf.get(..n).unwrap_or(&[])
    }
}

/// Maps an error to "gone" or "failed".
pub(crate) fn classify(e: &io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH) => Outcome::Gone,
        _ => {
            if e.kind() == io::ErrorKind::NotFound {
                Outcome::Gone
            } else {
                Outcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_file_and_grows() {
        let dir = std::env::temp_dir().join(format!("outlyer-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big");
        let mut body: Vec<u8> = (0..100_000u32).map(|i| b'0' + (i % 10) as u8).collect();
        body.push(b'\n');
        std::fs::write(&p, &body).unwrap();
        let src = Src::open(&p);
        let mut rb = ReadBuf::new();
        for multi in [false, true] {
            let Outcome::Ok(n) = rb.read(&src, multi) else {
                panic!("read failed")
            };
            assert_eq!(rb.bytes(n), &body[..]);
        }
        std::fs::write(&p, b"12\n").unwrap();
        assert_eq!(rb.read(&src, false), Outcome::Ok(3));
        assert_eq!(rb.bytes(3), b"12\n");
        assert_eq!(
            rb.read(&Src::open(&dir.join("nope")), false),
            Outcome::Missing
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_classified() {
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::ENODEV)),
            Outcome::Gone
        );
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::ESRCH)),
            Outcome::Gone
        );
        assert_eq!(
            classify(&io::Error::from_raw_os_error(libc::EIO)),
            Outcome::Failed
        );
    }
}
