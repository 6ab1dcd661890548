#![no_main]
//! OCI runtime spec (`config.json` of containerd's and CRI-O's bundles):
//! any bytes give a spec or `None`, never a panic; the Kubernetes identity
//! of whatever parsed is taken too.

use libfuzzer_sys::fuzz_target;
use outlyer_agent::bundle;

fuzz_target!(|data: &[u8]| {
    if let Some(spec) = bundle::parse_spec(data) {
        let _ = spec.kube();
    }
});
