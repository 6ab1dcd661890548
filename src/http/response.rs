//! Incremental HTTP/1.1 response decoder for the Docker client (sans-IO).

/// Longest excerpt of peer bytes an error message carries.
pub const EXCERPT_MAX: usize = 48;

/// A short, escaped, one-line excerpt of peer bytes for error messages: at
/// most [`EXCERPT_MAX`] input bytes, non-printable bytes as `\xNN`, `…` when cut.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len() > EXCERPT_MAX;
    let shown = bytes.get(..EXCERPT_MAX).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if cut {
        s.push('…');
    }
    s
}
