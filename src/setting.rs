//! What every settings parser shares: the error naming a bad setting (the
//! process exits with code 2), the upload flags and the agent key.

use std::fmt;

use crate::secret::Secret;

/// A bad flag or variable: which one, and what is wrong with it. The
/// message never quotes a value that can hold a secret.
#[derive(Debug, PartialEq, Eq)]
pub struct SettingError {
    pub setting: String,
    pub message: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.message)
    }
}

impl SettingError {
    pub fn new(setting: &str, message: impl Into<String>) -> SettingError {
        SettingError {
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}

/// Upload flag → the variable it stands for. Flags win over the
/// environment: the flag parser overlays them before the upload settings
/// read the environment.
pub const UPLOAD_FLAGS: &[(&str, &str)] = &[
    ("--server", "DATALOOP_SERVER"),
    ("--graphite", "DATALOOP_GRAPHITE"),
    ("--series-url", "DATALOOP_SERIES_URL"),
    ("--ca-file", "DATALOOP_CA_FILE"),
    ("--buffer-samples", "DATALOOP_BUFFER_SAMPLES"),
];

/// `DATALOOP_AGENT_KEY`: unset or blank is `None` (no upload); spaces or
/// control characters are refused without echoing the value.
pub fn agent_key(value: Option<String>) -> Result<Option<Secret>, SettingError> {
    match value {
        None => Ok(None),
        Some(k) if k.trim().is_empty() => Ok(None),
        Some(k) if k.bytes().any(|b| b.is_ascii_control() || b == b' ') => Err(SettingError::new(
            "DATALOOP_AGENT_KEY",
            "contains spaces or control characters",
        )),
        Some(k) => Ok(Some(Secret::new(k))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_setting() {
        let e = SettingError::new("--interval", "needs a value");
        assert_eq!(e.to_string(), "invalid --interval: needs a value");
    }

    #[test]
    fn agent_key_is_checked_and_never_echoed() {
        assert_eq!(agent_key(None), Ok(None));
        assert_eq!(agent_key(Some(" \t".into())), Ok(None));
        assert_eq!(
            agent_key(Some("k3y".into())).unwrap().unwrap().expose(),
            "k3y"
        );
        for bad in ["se cret", "sekrit\nvalue", "a\r\nb", " padded"] {
            let e = agent_key(Some(bad.into())).unwrap_err();
            assert_eq!(e.setting, "DATALOOP_AGENT_KEY");
            assert!(!e.to_string().contains(bad.trim()), "{e}");
        }
    }

    #[test]
    fn every_upload_flag_stands_for_a_dataloop_variable() {
        for (flag, var) in UPLOAD_FLAGS {
            assert!(flag.starts_with("--") && var.starts_with("DATALOOP_"));
        }
    }
}
