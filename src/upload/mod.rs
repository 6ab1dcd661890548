//! Upload to the monitoring backend over TLS. Under construction.
