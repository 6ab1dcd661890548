//! The few syscalls std lacks. The only module allowed to use `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// SIGTERM and SIGINT delivered as readable events on a file descriptor, so
/// the event loop sees them like any other readiness.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks SIGTERM and SIGINT for this (single-threaded) process and opens
    /// a non-blocking signalfd for them.
    pub fn new() -> io::Result<SignalFd> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it
        // fully before use, and the pointers are to a live local.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Reads one pending signal number, `Ok(None)` when none is pending.
    pub fn read(&self) -> io::Result<Option<i32>> {
        // SAFETY: signalfd_siginfo is plain data, valid when zeroed.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: the buffer is a live local of exactly `size` bytes.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut _) as *mut libc::c_void,
                size,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(err),
            };
        }
        if n as usize != size {
            return Ok(None);
        }
        Ok(Some(info.ssi_signo as i32))
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The host name of this UTS namespace.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is live and its length is passed; gethostname
    // writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Raises the soft open-files limit to the hard one (the collector keeps
/// about 14 descriptors per container open). Returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: rlimit is plain data; getrlimit fills it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is initialised and only raises the soft limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur as u64)
}

/// User + system CPU time of this process, in seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it for RUSAGE_SELF.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_limit_is_raised_to_the_hard_limit() {
        let soft = raise_nofile_limit().unwrap();
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur as u64, soft);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }

    #[test]
    fn cpu_seconds_grow_with_work() {
        let before = process_cpu_seconds();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds() > before);
    }
}

/// Opens a directory as an `O_PATH` handle: it cannot be read, only used as
/// the base of [`open_at`]. The kernel keeps a `struct file` for it and no
/// read buffer, so holding one per container is cheap.
pub fn open_dir_handle(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// Opens the file `name` inside the directory `dir` read-only (`openat(2)`),
/// without building a path.
pub fn open_at(dir: &OwnedFd, name: &std::ffi::CStr) -> io::Result<std::fs::File> {
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is an open fd.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

#[cfg(test)]
mod dir_handle_tests {
    use super::*;

    #[test]
    fn open_at_reads_relative_to_a_dir_handle() {
        let dir = std::env::temp_dir().join(format!("outlyer-openat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pids.max"), b"max\n").unwrap();
        let h = open_dir_handle(&dir).unwrap();
        let text = std::io::read_to_string(open_at(&h, c"pids.max").unwrap()).unwrap();
        assert_eq!(text, "max\n");
        let missing = open_at(&h, c"nope").unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        assert!(
            open_dir_handle(&dir.join("pids.max")).is_err(),
            "not a directory"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A non-blocking inotify descriptor watching the directory `dir` for
/// `mask` (`IN_CREATE | …`); read it as a file (reads end in `WouldBlock`).
pub fn inotify_watch(dir: &std::ffi::CStr, mask: u32) -> io::Result<std::fs::File> {
    // SAFETY: a plain syscall; the descriptor is owned right below.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `dir` is NUL-terminated and outlives the call.
    if unsafe { libc::inotify_add_watch(raw, dir.as_ptr(), mask) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::fs::File::from(fd))
}

/// A fresh non-blocking inotify descriptor with no watch yet.
pub fn inotify_new() -> io::Result<std::fs::File> {
    // SAFETY: a plain syscall; the descriptor is owned right below.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// Adds (or, for an inode already watched, updates) a watch on `path`;
/// returns its watch descriptor.
pub fn inotify_add(fd: &impl AsRawFd, path: &std::ffi::CStr, mask: u32) -> io::Result<i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call; `fd` is open.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}
