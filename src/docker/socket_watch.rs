//! Watches the directory of the daemon's socket with inotify, so that the
//! agent reconnects as soon as the socket reappears (a daemon restart)
//! instead of on its next backoff step. The descriptor is non-blocking and
//! registered with the event loop's `mio::Poll`; nothing is polled.

use std::ffi::CString;
use std::io;
use std::io::Read as _;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An inotify watch on the socket's directory.
#[derive(Debug)]
pub struct SocketWatch {
    file: std::fs::File,
    name: Vec<u8>,
}

impl SocketWatch {
    /// Watches the directory that holds `socket` for the socket's name
    /// being created, moved in or having its attributes changed.
    pub fn new(socket: &Path) -> io::Result<SocketWatch> {
        let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no directory"));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let c_dir = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the path"))?;
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ATTRIB;
        let file = crate::sys::inotify_watch(&c_dir, mask)?;
        Ok(SocketWatch {
            file,
            name: name.as_bytes().to_vec(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Reads every pending event; true when one named the socket.
    pub fn drain(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut named = false;
        loop {
            match self.file.read(&mut buf) {
                Ok(n) if n > 0 => {
                    named |= names_in(&buf[..n]).any(|n| n == self.name.as_slice());
                }
                Ok(_) => return named,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return named,
            }
        }
    }
}

/// The names carried by a buffer of `struct inotify_event` records: a
/// 16-byte header (wd, mask, cookie, len) then `len` bytes of NUL-padded
/// name. A truncated record ends the walk.
pub fn names_in(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = buf.get(at..at + 16)?;
        let len = u32::from_ne_bytes([head[12], head[13], head[14], head[15]]) as usize;
        let name = buf.get(at + 16..at + 16 + len)?;
        at += 16 + len;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(&name[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, padded: usize) -> Vec<u8> {
        let mut r = vec![0u8; 12];
        r.extend_from_slice(&(padded as u32).to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.resize(padded, 0);
        r.extend(n);
        r
    }

    #[test]
    fn names_of_event_records() {
        let mut buf = record("docker.sock", 16);
        buf.extend(record("other", 16));
        buf.extend(record("", 0));
        let names: Vec<&[u8]> = names_in(&buf).collect();
        assert_eq!(names, [&b"docker.sock"[..], b"other", b""]);
        // A truncated record is not read past.
        assert_eq!(names_in(&buf[..20]).count(), 0);
        assert_eq!(names_in(&[]).count(), 0);
    }

    /// A real watch: creating the socket's name is seen, another name is not.
    #[test]
    fn sees_the_socket_name_appear() {
        let dir = std::env::temp_dir().join(format!("outlyer-sockwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("docker.sock");
        let mut w = SocketWatch::new(&socket).unwrap();
        assert!(!w.drain());
        std::fs::write(dir.join("unrelated"), b"").unwrap();
        assert!(!w.drain());
        let l = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert!(w.drain());
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(SocketWatch::new(&dir.join("x")).is_err());
    }
}
