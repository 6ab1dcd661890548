//! The command line: parse the arguments and settings, stop with exit code 2
//! on a bad one (naming it, never quoting a secret), then run the agent.

use crate::agent::{Agent, StartError};
use crate::config::{self, Command, Config};
use crate::upload::UploadSettings;
use crate::{error, warn};

/// Process entry: parses the command line and runs. Returns the exit code.
pub fn main_entry() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Registered before anything is parsed, so that no start-up message can
    // carry the key either (messages never quote such values; this is the
    // second line of defence).
    if let Ok(key) = std::env::var("DATALOOP_AGENT_KEY") {
        crate::log::set_secret(key.trim());
    }
    let command = config::parse(args, |k| std::env::var(k).ok(), |p| p.exists());
    match command {
        Err(e) => {
            eprintln!("outlyer-agent: {}", crate::log::scrub(&e.to_string()));
            2
        }
        Ok(Command::Help) => {
            print!("{}", config::help_text());
            0
        }
        Ok(Command::Version) => {
            println!("outlyer-agent {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Run(cfg)) => {
            let upload = match UploadSettings::from_env(|k| cfg.upload_env(k)) {
                Ok(u) => u,
                Err(mut e) => {
                    if let Some(flag) = cfg.flag_for(&e.setting) {
                        e.setting = flag.to_owned();
                    }
                    eprintln!("outlyer-agent: {}", crate::log::scrub(&e.to_string()));
                    return 2;
                }
            };
            if let Some(u) = &upload {
                // An unusable DATALOOP_CA_FILE is a bad setting: say so now,
                // not when the uploader starts.
                if let Err(e) = crate::upload::uploader::tls_config(&u.extra_roots) {
                    eprintln!("outlyer-agent: {e}");
                    return 2;
                }
            }
            run(*cfg, upload)
        }
    }
}

fn run(cfg: Config, upload: Option<UploadSettings>) -> i32 {
    crate::log::set_debug(cfg.debug);
    match crate::sys::raise_nofile_limit() {
        Ok(n) => {
            crate::debug!("open-files limit {n}");
            crate::metrics::set_fd_limit(n);
        }
        Err(e) => warn!("cannot raise the open-files limit: {e}"),
    }
    if let Some(key) = &cfg.agent_key {
        crate::log::set_secret(key.expose());
    }
    let mut agent = match Agent::new(cfg, upload) {
        Ok(a) => a,
        Err(StartError::Setting(setting, e)) => {
            eprintln!("outlyer-agent: cannot use {setting}: {e}");
            return 2;
        }
        Err(StartError::Io(e)) => {
            error!("cannot start: {e}");
            return 1;
        }
    };
    match agent.run() {
        Ok(()) => 0,
        Err(e) => {
            error!("event loop failed: {e}");
            1
        }
    }
}
