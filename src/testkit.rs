//! Synthetic host trees (rootfs with /proc and cgroup files) for tests and benches. Under construction.
