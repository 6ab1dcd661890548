//! Engine API versions and the negotiation rule (docs/compat.md §1.2).
//!
//! The agent asks the unversioned `GET /version` once, then prefixes every
//! path with `/v<negotiated>`: the daemon's newest version capped at ours,
//! but never below the daemon's minimum.

use crate::docker::api::ApiError;
use core::fmt;

/// An Engine API version such as `1.41`. Ordered numerically (1.9 < 1.19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

/// The newest API version whose shapes this agent knows (Docker 29.3+).
pub const AGENT_MAX_API: ApiVersion = ApiVersion::new(1, 54);

/// What a daemon that does not send `MinAPIVersion` (API < 1.25) accepts.
pub const ASSUMED_MIN_API: ApiVersion = ApiVersion::new(1, 12);

/// Longest digit run accepted per component; keeps parsing overflow-free.
const MAX_COMPONENT_DIGITS: usize = 9;

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> ApiVersion {
        ApiVersion { major, minor }
    }

    /// Parses `MAJOR.MINOR` (ASCII digits only, 1–9 digits each). Anything
    /// else (`1`, `1.`, `v1.41`, `1.41.0`, ` 1.41`, `1.-4`) is `None`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion {
            major: parse_component(major)?,
            minor: parse_component(minor)?,
        })
    }
}

fn parse_component(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > MAX_COMPONENT_DIGITS {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| {
        if b.is_ascii_digit() {
            Some(acc * 10 + u32::from(b - b'0'))
        } else {
            None
        }
    })
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version to prefix requests with:
/// `max(daemon_min or 1.12, min(daemon_max, AGENT_MAX_API))`.
///
/// When the daemon's minimum is above our maximum we still speak its minimum:
/// the shapes we read have stayed compatible, and an unversioned request
/// would be worse (it picks the daemon's newest).
pub fn negotiate(daemon_max: ApiVersion, daemon_min: Option<ApiVersion>) -> ApiVersion {
    let floor = daemon_min.unwrap_or(ASSUMED_MIN_API);
    floor.max(daemon_max.min(AGENT_MAX_API))
}

/// The parts of `GET /version` the agent uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Engine version, e.g. `20.10.24` (empty if absent).
    pub version: String,
    /// The daemon's newest API version.
    pub api_version: ApiVersion,
    /// The daemon's oldest API version (sent since API 1.25).
    pub min_api_version: Option<ApiVersion>,
    /// Host kernel as the daemon sees it (empty if absent).
    pub kernel_version: String,
}

impl VersionInfo {
    /// [`negotiate`] applied to this daemon.
    pub fn negotiated(&self) -> ApiVersion {
        negotiate(self.api_version, self.min_api_version)
    }
}

#[derive(miniserde::Deserialize)]
struct VersionBody {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "ApiVersion")]
    api_version: Option<String>,
    #[serde(rename = "MinAPIVersion")]
    min_api_version: Option<String>,
    #[serde(rename = "KernelVersion")]
    kernel_version: Option<String>,
}

/// Parses a `GET /version` body. `ApiVersion` is required; an unparsable
/// `MinAPIVersion` is treated as absent (the daemon will tell us with a 400
/// if the assumed minimum is wrong).
pub fn parse_version_body(body: &[u8]) -> Result<VersionInfo, ApiError> {
    let raw: VersionBody = crate::docker::api::parse_json("/version", body)?;
    let api_text = raw
        .api_version
        .ok_or_else(|| ApiError::field("/version", "ApiVersion", b""))?;
    let api_version = ApiVersion::parse(&api_text)
        .ok_or_else(|| ApiError::field("/version", "ApiVersion", api_text.as_bytes()))?;
    Ok(VersionInfo {
        version: raw.version.unwrap_or_default(),
        api_version,
        min_api_version: raw.min_api_version.as_deref().and_then(ApiVersion::parse),
        kernel_version: raw.kernel_version.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32) -> ApiVersion {
        ApiVersion::new(major, minor)
    }

    #[test]
    fn parse_accepts_major_dot_minor() {
        assert_eq!(ApiVersion::parse("1.41"), Some(v(1, 41)));
        assert_eq!(ApiVersion::parse("1.9"), Some(v(1, 9)));
        assert_eq!(ApiVersion::parse("2.0"), Some(v(2, 0)));
        assert_eq!(ApiVersion::parse("1.041"), Some(v(1, 41)));
        assert_eq!(ApiVersion::parse("999999999.1"), Some(v(999_999_999, 1)));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "1",
            "1.",
            ".41",
            "v1.41",
            "1.41.0",
            " 1.41",
            "1.41 ",
            "1.-4",
            "+1.4",
            "1.4a",
            "1..4",
            "1,41",
            "1234567890.1",
            "1.4294967296",
            "١.٤١",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(v(1, 41).to_string(), "1.41");
        assert_eq!(v(1, 9).to_string(), "1.9");
        assert_eq!(
            ApiVersion::parse(&AGENT_MAX_API.to_string()),
            Some(AGENT_MAX_API)
        );
    }

    #[test]
    fn ordering_is_numeric_not_textual() {
        assert!(v(1, 9) < v(1, 19));
        assert!(v(1, 54) < v(2, 0));
        assert!(v(1, 41) > v(1, 40));
        assert_eq!(v(1, 41).max(v(1, 24)), v(1, 41));
    }

    #[test]
    fn docker_1_7_version_reply_negotiates_its_max() {
        let body = br#"{"Version":"1.7.1","ApiVersion":"1.19","GitCommit":"786b29d","GoVersion":"go1.4.2","Os":"linux","Arch":"amd64","KernelVersion":"4.1.10-17.31.amzn1.x86_64"}
"#;
        let info = parse_version_body(body).unwrap();
        assert_eq!(info.version, "1.7.1");
        assert_eq!(info.api_version, v(1, 19));
        assert_eq!(info.min_api_version, None);
        assert_eq!(info.kernel_version, "4.1.10-17.31.amzn1.x86_64");
        assert_eq!(info.negotiated(), v(1, 19));
    }

    #[test]
    fn docker_27_version_reply() {
        let body = br#"{"Platform":{"Name":"Docker Engine - Community"},"Components":[{"Name":"Engine","Version":"27.3.1","Details":{"ApiVersion":"1.47","MinAPIVersion":"1.24","Os":"linux"}}],
 "Version":"27.3.1","ApiVersion":"1.47","MinAPIVersion":"1.24","GitCommit":"41ca978","GoVersion":"go1.22.7","Os":"linux","Arch":"amd64","KernelVersion":"6.8.0-45-generic","BuildTime":"2024-09-20T11:41:09.000000000+00:00"}
"#;
        let info = parse_version_body(body).unwrap();
        assert_eq!(info.version, "27.3.1");
        assert_eq!(info.api_version, v(1, 47));
        assert_eq!(info.min_api_version, Some(v(1, 24)));
        assert_eq!(info.negotiated(), v(1, 47));
    }

    #[test]
    fn docker_29_newer_than_agent_is_capped() {
        let body = br#"{"Version":"29.4.0","ApiVersion":"1.56","MinAPIVersion":"1.40","KernelVersion":"6.12.0"}"#;
        let info = parse_version_body(body).unwrap();
        assert_eq!(info.negotiated(), v(1, 54));
        assert_eq!(info.negotiated(), AGENT_MAX_API);
    }

    #[test]
    fn daemon_minimum_above_agent_maximum_wins() {
        assert_eq!(negotiate(v(1, 70), Some(v(1, 60))), v(1, 60));
        let body = br#"{"Version":"99.0","ApiVersion":"1.70","MinAPIVersion":"1.60"}"#;
        assert_eq!(parse_version_body(body).unwrap().negotiated(), v(1, 60));
    }

    #[test]
    fn negotiate_table() {
        assert_eq!(negotiate(v(1, 41), None), v(1, 41));
        assert_eq!(negotiate(v(1, 41), Some(v(1, 12))), v(1, 41));
        assert_eq!(negotiate(v(1, 10), None), ASSUMED_MIN_API);
        assert_eq!(negotiate(v(1, 54), Some(v(1, 44))), v(1, 54));
    }

    #[test]
    fn local_daemon_20_10_reply() {
        let body = br#"{"Platform":{"Name":"Docker Engine - Community"},"Components":[{"Name":"Engine","Version":"20.10.24","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2023-04-04T17:59:27.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.7","KernelVersion":"5.15.0","MinAPIVersion":"1.12","Os":"linux"}}],"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.7","Os":"linux","Arch":"amd64","KernelVersion":"5.15.0","BuildTime":"2023-04-04T17:59:27.000000000+00:00"}
"#;
        let info = parse_version_body(body).unwrap();
        assert_eq!(info.min_api_version, Some(v(1, 12)));
        assert_eq!(info.negotiated(), v(1, 41));
    }

    #[test]
    fn version_body_errors() {
        assert!(parse_version_body(b"").is_err());
        assert!(parse_version_body(b"not json").is_err());
        assert!(parse_version_body(b"[]").is_err());
        assert!(parse_version_body(br#"{"Version":"1.7.1"}"#).is_err());
        assert!(parse_version_body(br#"{"ApiVersion":"one.nineteen"}"#).is_err());
        assert!(parse_version_body(br#"{"ApiVersion":1.19}"#).is_err());
        assert!(parse_version_body(b"{\"ApiVersion\":\"1.19\"}\xff").is_err());
        // Unparsable minimum is treated as absent, not fatal.
        let info = parse_version_body(br#"{"ApiVersion":"1.41","MinAPIVersion":"x"}"#).unwrap();
        assert_eq!(info.min_api_version, None);
    }
}
