//! A value that must never be printed: the agent key, proxy credentials.

use std::fmt;

/// `Debug` and `Display` show `[redacted]`, never the value; [`Secret::expose`]
/// is for the code that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Holder {
        key: Secret,
        maybe: Option<Secret>,
    }

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.to_string(), "[redacted]");
        let h = Holder {
            key: s.clone(),
            maybe: Some(s),
        };
        for text in [
            format!("{h:?}"),
            format!("{h:#?}"),
            format!("{:?}", h.maybe),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
        assert!(!format!("{:>20}|{:<20}", h.key, h.key).contains("hunter2"));
    }
}
