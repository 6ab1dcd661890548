//! /proc parsers: stat, meminfo, loadavg, net/dev, net/tcp, pid stat, cgroups.

pub mod parse;
