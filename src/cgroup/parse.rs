//! Parsers for cgroup v1 and v2 pseudo-files.
//!
//! Pure functions over the bytes of one file (the caller opens and reads it,
//! see `docs/compat.md` §3): nothing allocates, results borrow the input, and no
//! input panics. Flat-keyed files are looked up by key in any order; every
//! known key is an `Option<u64>` so "missing" (old kernel, accounting off)
//! stays distinct from 0. Multi-row files are iterators over the buffer that
//! yield one `Result` per row, so one bad row does not hide the others.
//!
//! | file | parser |
//! |---|---|
//! | `memory.stat` (v1, v2) | [`parse_memory_stat`] |
//! | `memory.usage_in_bytes`, `memory.current`, `memory.max_usage_in_bytes`, `memory.peak`, `memory.failcnt`, `memory.swap.current`, `cpu.cfs_period_us`, `cpu.shares`, `cpu.weight`, `pids.current` | [`parse_single_u64`] |
//! | `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`, `memory.max`, `memory.swap.max`, `pids.max` | [`parse_memory_limit`] (= [`parse_limit`]) |
//! | `cpu.cfs_quota_us` | [`parse_cfs_quota`] |
//! | `cpu.max` | [`parse_cpu_max`] |
//! | `cpuacct.usage` | [`parse_cpuacct_usage`] |
//! | `cpuacct.usage_percpu` | [`parse_usage_percpu`], [`percpu_values`] |
//! | `cpuacct.stat` | [`parse_cpuacct_stat`] |
//! | `cpu.stat` (v1, v2) | [`parse_cpu_stat`] |
//! | `blkio.throttle.io_service_bytes`, `…io_serviced`, `…_recursive`, `blkio.bfq.*` | [`blkio_rows`], [`parse_blkio_totals`] |
//! | `io.stat` | [`io_stat_rows`], [`parse_io_stat_totals`] |
//! | `memory.events` | [`parse_memory_events`] |
//! | `memory.oom_control` | [`parse_oom_control`] |
//! | `cgroup.procs`, `tasks`, `cgroup.threads` | [`pids`], [`count_pids`] |

use core::fmt;

use crate::parse::{
    fields, key_values, keyed_u64_struct, lines, parse_u32, parse_u64, split_once_byte, trim_ascii,
    Fields, Lines,
};
pub use crate::parse::{parse_limit, parse_single_u64, Limit, ParseError};

keyed_u64_struct! {
    /// `memory.stat`, v1 and v2 keys in one struct (a v1 file fills the v1
    /// fields, a v2 file the v2 ones; shared names such as `inactive_file`,
    /// `pgfault`, `shmem` are filled by both). Bytes except the `pg*` event counts.
    pub struct MemoryStat {
        // v1 local block (also v2 where the name is shared)
        cache => b"cache",
        rss => b"rss",
        rss_huge => b"rss_huge",
        shmem => b"shmem",
        mapped_file => b"mapped_file",
        dirty => b"dirty",
        writeback => b"writeback",
        swap => b"swap",
        swapcached => b"swapcached",
        pgpgin => b"pgpgin",
        pgpgout => b"pgpgout",
        pgfault => b"pgfault",
        pgmajfault => b"pgmajfault",
        inactive_anon => b"inactive_anon",
        active_anon => b"active_anon",
        inactive_file => b"inactive_file",
        active_file => b"active_file",
        unevictable => b"unevictable",
        workingset_refault_anon => b"workingset_refault_anon",
        workingset_refault_file => b"workingset_refault_file",
        /// v1: the smallest limit on the path to the root (ECS task limits show here).
        hierarchical_memory_limit => b"hierarchical_memory_limit",
        /// v1, swap accounting only.
        hierarchical_memsw_limit => b"hierarchical_memsw_limit",
        // v1 hierarchical twins: this cgroup plus descendants
        total_cache => b"total_cache",
        total_rss => b"total_rss",
        total_rss_huge => b"total_rss_huge",
        total_shmem => b"total_shmem",
        total_mapped_file => b"total_mapped_file",
        total_dirty => b"total_dirty",
        total_writeback => b"total_writeback",
        total_swap => b"total_swap",
        total_swapcached => b"total_swapcached",
        total_pgpgin => b"total_pgpgin",
        total_pgpgout => b"total_pgpgout",
        total_pgfault => b"total_pgfault",
        total_pgmajfault => b"total_pgmajfault",
        total_inactive_anon => b"total_inactive_anon",
        total_active_anon => b"total_active_anon",
        total_inactive_file => b"total_inactive_file",
        total_active_file => b"total_active_file",
        total_unevictable => b"total_unevictable",
        total_workingset_refault_anon => b"total_workingset_refault_anon",
        total_workingset_refault_file => b"total_workingset_refault_file",
        // v2 only
        anon => b"anon",
        file => b"file",
        kernel => b"kernel",
        kernel_stack => b"kernel_stack",
        pagetables => b"pagetables",
        percpu => b"percpu",
        sock => b"sock",
        vmalloc => b"vmalloc",
        shmem_thp => b"shmem_thp",
        file_mapped => b"file_mapped",
        file_dirty => b"file_dirty",
        file_writeback => b"file_writeback",
        anon_thp => b"anon_thp",
        file_thp => b"file_thp",
        slab_reclaimable => b"slab_reclaimable",
        slab_unreclaimable => b"slab_unreclaimable",
        slab => b"slab",
        workingset_activate_anon => b"workingset_activate_anon",
        workingset_activate_file => b"workingset_activate_file",
        workingset_restore_anon => b"workingset_restore_anon",
        workingset_restore_file => b"workingset_restore_file",
        workingset_nodereclaim => b"workingset_nodereclaim",
        pgscan => b"pgscan",
        pgsteal => b"pgsteal",
        pgactivate => b"pgactivate",
        pgdeactivate => b"pgdeactivate",
        pglazyfree => b"pglazyfree",
        pglazyfreed => b"pglazyfreed",
        thp_fault_alloc => b"thp_fault_alloc",
        thp_collapse_alloc => b"thp_collapse_alloc",
    }
}

impl MemoryStat {
    /// `hierarchical_memory_limit` classified (sentinels ≥ 2^62 → unlimited).
    pub fn hierarchical_limit(&self) -> Option<Limit> {
        self.hierarchical_memory_limit.map(Limit::from_raw)
    }

    /// Inactive page cache for the working-set formula: `total_inactive_file`
    /// (v1, hierarchical) when present, else `inactive_file` (v2 is hierarchical already).
    pub fn inactive_file_hierarchical(&self) -> Option<u64> {
        self.total_inactive_file.or(self.inactive_file)
    }
}

/// Parses `memory.stat` (v1 or v2).
pub fn parse_memory_stat(buf: &[u8]) -> Result<MemoryStat, ParseError> {
    MemoryStat::parse(buf)
}

keyed_u64_struct! {
    /// v1 `cpuacct.stat`, in USER_HZ ticks (100/s).
    pub struct CpuacctStat {
        user => b"user",
        system => b"system",
    }
}

/// Parses v1 `cpuacct.stat` (`user 2547\nsystem 1163\n`).
pub fn parse_cpuacct_stat(buf: &[u8]) -> Result<CpuacctStat, ParseError> {
    CpuacctStat::parse(buf)
}

keyed_u64_struct! {
    /// `cpu.stat`: v1 CFS bandwidth counters (ns) and v2 usage/bandwidth (µs).
    pub struct CpuStat {
        // v1 and v2
        nr_periods => b"nr_periods",
        nr_throttled => b"nr_throttled",
        nr_bursts => b"nr_bursts",
        // v1 (ns)
        throttled_time => b"throttled_time",
        burst_time => b"burst_time",
        wait_sum => b"wait_sum",
        // v2 (µs)
        usage_usec => b"usage_usec",
        user_usec => b"user_usec",
        system_usec => b"system_usec",
        throttled_usec => b"throttled_usec",
        burst_usec => b"burst_usec",
        core_sched_force_idle_usec => b"core_sched.force_idle_usec",
    }
}

/// Parses `cpu.stat` (v1 or v2).
pub fn parse_cpu_stat(buf: &[u8]) -> Result<CpuStat, ParseError> {
    CpuStat::parse(buf)
}

keyed_u64_struct! {
    /// v2 `memory.events` (or `memory.events.local`).
    pub struct MemoryEvents {
        low => b"low",
        high => b"high",
        max => b"max",
        oom => b"oom",
        oom_kill => b"oom_kill",
        oom_group_kill => b"oom_group_kill",
    }
}

/// Parses v2 `memory.events`.
pub fn parse_memory_events(buf: &[u8]) -> Result<MemoryEvents, ParseError> {
    MemoryEvents::parse(buf)
}

keyed_u64_struct! {
    /// v1 `memory.oom_control` (`oom_kill` since 4.13).
    pub struct OomControl {
        oom_kill_disable => b"oom_kill_disable",
        under_oom => b"under_oom",
        oom_kill => b"oom_kill",
    }
}

/// Parses v1 `memory.oom_control`.
pub fn parse_oom_control(buf: &[u8]) -> Result<OomControl, ParseError> {
    OomControl::parse(buf)
}

/// Parses a memory/pids limit file: `memory.limit_in_bytes` (sentinels),
/// `memory.max`, `memory.swap.max`, `memory.high`, `pids.max` (`max`).
pub fn parse_memory_limit(buf: &[u8]) -> Result<Limit, ParseError> {
    parse_limit(buf)
}

/// Parses v1 `cpu.cfs_quota_us`: `-1` → unlimited, else µs per period.
pub fn parse_cfs_quota(buf: &[u8]) -> Result<Limit, ParseError> {
    parse_limit(buf)
}

/// v2 `cpu.max`: quota (or `max`) and period, both µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMax {
    /// `max` → unlimited.
    pub quota: Limit,
    /// Period in µs (100000 by default).
    pub period: u64,
}

/// Parses v2 `cpu.max` (`max 100000` or `50000 100000`).
pub fn parse_cpu_max(buf: &[u8]) -> Result<CpuMax, ParseError> {
    let mut f = fields(buf);
    let quota = f.next().ok_or(ParseError::Empty)?;
    let period = f.next().ok_or(ParseError::MissingField)?;
    if f.next().is_some() {
        return Err(ParseError::Malformed("cpu.max: extra field"));
    }
    let quota = if quota == b"max" {
        Limit::Unlimited
    } else {
        Limit::Bytes(parse_u64(quota)?)
    };
    Ok(CpuMax {
        quota,
        period: parse_u64(period)?,
    })
}

/// Summary of `cpuacct.usage_percpu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerCpuSummary {
    /// Number of values (possible CPUs, not online CPUs).
    pub count: u32,
    /// Number of non-zero values (a lower bound on CPUs that ever ran the cgroup).
    pub nonzero: u32,
    /// Sum of all values in ns (saturating).
    pub sum: u64,
}

/// Iterator over the ns values of `cpuacct.usage_percpu` (or `usage_percpu_user`/`_sys`).
#[derive(Clone, Debug)]
pub struct PerCpuValues<'a> {
    fields: Fields<'a>,
}

impl Iterator for PerCpuValues<'_> {
    type Item = Result<u64, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fields.next().map(parse_u64)
    }
}

/// Values of `cpuacct.usage_percpu` (trailing space tolerated).
pub fn percpu_values(buf: &[u8]) -> PerCpuValues<'_> {
    PerCpuValues {
        fields: fields(buf),
    }
}

/// Parses `cpuacct.usage_percpu` into count, non-zero count and sum.
pub fn parse_usage_percpu(buf: &[u8]) -> Result<PerCpuSummary, ParseError> {
    let mut out = PerCpuSummary::default();
    for value in percpu_values(buf) {
        let value = value?;
        out.count = out.count.checked_add(1).ok_or(ParseError::TooLong)?;
        if value != 0 {
            out.nonzero += 1;
        }
        out.sum = out.sum.saturating_add(value);
    }
    if out.count == 0 {
        return Err(ParseError::Empty);
    }
    Ok(out)
}

/// Parses v1 `cpuacct.usage` (total ns).
pub fn parse_cpuacct_usage(buf: &[u8]) -> Result<u64, ParseError> {
    parse_single_u64(buf)
}

/// A block device number `major:minor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Device {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Parses `maj:min`.
pub fn parse_device(buf: &[u8]) -> Result<Device, ParseError> {
    let (major, minor) = split_once_byte(buf, b':').ok_or(ParseError::Malformed("device"))?;
    Ok(Device {
        major: parse_u32(major)?,
        minor: parse_u32(minor)?,
    })
}

/// The operation column of v1 blkio files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlkioOp {
    /// `Read`.
    Read,
    /// `Write`.
    Write,
    /// `Sync`.
    Sync,
    /// `Async`.
    Async,
    /// `Discard` (newer kernels).
    Discard,
}

impl BlkioOp {
    fn from_bytes(op: &[u8]) -> Option<BlkioOp> {
        match op {
            b"Read" => Some(BlkioOp::Read),
            b"Write" => Some(BlkioOp::Write),
            b"Sync" => Some(BlkioOp::Sync),
            b"Async" => Some(BlkioOp::Async),
            b"Discard" => Some(BlkioOp::Discard),
            _ => None,
        }
    }
}

/// One `maj:min Op value` row of a v1 blkio file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkioRow {
    /// Device.
    pub device: Device,
    /// Operation.
    pub op: BlkioOp,
    /// Bytes (`io_service_bytes*`) or IO count (`io_serviced*`).
    pub value: u64,
}

/// Iterator over the rows of `blkio.throttle.io_service_bytes`,
/// `blkio.throttle.io_serviced`, `blkio.io_service_bytes_recursive`, …:
/// `Total` lines (per device and the final one) and unknown ops are skipped,
/// so an idle `Total 0` file yields no rows.
#[derive(Clone, Debug)]
pub struct BlkioRows<'a> {
    lines: Lines<'a>,
}

/// Rows of a v1 blkio file.
pub fn blkio_rows(buf: &[u8]) -> BlkioRows<'_> {
    BlkioRows { lines: lines(buf) }
}

impl Iterator for BlkioRows<'_> {
    type Item = Result<BlkioRow, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            let mut f = fields(line);
            let Some(first) = f.next() else { continue };
            if first == b"Total" {
                continue;
            }
            let (Some(op), Some(value)) = (f.next(), f.next()) else {
                return Some(Err(ParseError::MissingField));
            };
            if op == b"Total" {
                continue;
            }
            let Some(op) = BlkioOp::from_bytes(op) else {
                continue;
            };
            return Some(parse_device(first).and_then(|device| {
                Ok(BlkioRow {
                    device,
                    op,
                    value: parse_u64(value)?,
                })
            }));
        }
        None
    }
}

/// Per-op sums of a blkio file over all devices (saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkioTotals {
    /// Sum of `Read` rows.
    pub read: u64,
    /// Sum of `Write` rows.
    pub write: u64,
    /// Sum of `Sync` rows.
    pub sync: u64,
    /// Sum of `Async` rows.
    pub async_: u64,
    /// Sum of `Discard` rows.
    pub discard: u64,
    /// Number of rows summed.
    pub rows: u32,
}

/// Sums a blkio file by op; the first bad row is an error.
pub fn parse_blkio_totals(buf: &[u8]) -> Result<BlkioTotals, ParseError> {
    let mut t = BlkioTotals::default();
    for row in blkio_rows(buf) {
        let row = row?;
        let slot = match row.op {
            BlkioOp::Read => &mut t.read,
            BlkioOp::Write => &mut t.write,
            BlkioOp::Sync => &mut t.sync,
            BlkioOp::Async => &mut t.async_,
            BlkioOp::Discard => &mut t.discard,
        };
        *slot = slot.saturating_add(row.value);
        t.rows = t.rows.saturating_add(1);
    }
    Ok(t)
}

/// One line of v2 `io.stat`; keys the line lacks stay `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStatRow {
    /// Device.
    pub device: Device,
    /// Bytes read.
    pub rbytes: Option<u64>,
    /// Bytes written.
    pub wbytes: Option<u64>,
    /// Read IOs.
    pub rios: Option<u64>,
    /// Write IOs.
    pub wios: Option<u64>,
    /// Bytes discarded (newer kernels).
    pub dbytes: Option<u64>,
    /// Discard IOs (newer kernels).
    pub dios: Option<u64>,
}

/// Iterator over v2 `io.stat` lines (`maj:min key=value …`); unknown keys
/// (and tokens without `=`) are ignored.
#[derive(Clone, Debug)]
pub struct IoStatRows<'a> {
    lines: Lines<'a>,
}

/// Rows of v2 `io.stat`.
pub fn io_stat_rows(buf: &[u8]) -> IoStatRows<'_> {
    IoStatRows { lines: lines(buf) }
}

fn parse_io_stat_line(line: &[u8]) -> Result<IoStatRow, ParseError> {
    let mut f = fields(line);
    let device = parse_device(f.next().ok_or(ParseError::MissingField)?)?;
    let mut row = IoStatRow {
        device,
        ..IoStatRow::default()
    };
    for token in f {
        let Some((key, value)) = split_once_byte(token, b'=') else {
            continue;
        };
        let slot = match key {
            b"rbytes" => &mut row.rbytes,
            b"wbytes" => &mut row.wbytes,
            b"rios" => &mut row.rios,
            b"wios" => &mut row.wios,
            b"dbytes" => &mut row.dbytes,
            b"dios" => &mut row.dios,
            _ => continue,
        };
        *slot = Some(parse_u64(value)?);
    }
    Ok(row)
}

impl Iterator for IoStatRows<'_> {
    type Item = Result<IoStatRow, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            if trim_ascii(line).is_empty() {
                continue;
            }
            return Some(parse_io_stat_line(line));
        }
        None
    }
}

/// Sums of v2 `io.stat` over all devices (saturating; absent keys add 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStatTotals {
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Read IOs.
    pub rios: u64,
    /// Write IOs.
    pub wios: u64,
    /// Bytes discarded.
    pub dbytes: u64,
    /// Discard IOs.
    pub dios: u64,
    /// Number of device lines summed.
    pub devices: u32,
}

/// Sums v2 `io.stat` over its devices; the first bad line is an error.
pub fn parse_io_stat_totals(buf: &[u8]) -> Result<IoStatTotals, ParseError> {
    let mut t = IoStatTotals::default();
    for row in io_stat_rows(buf) {
        let row = row?;
        for (slot, value) in [
            (&mut t.rbytes, row.rbytes),
            (&mut t.wbytes, row.wbytes),
            (&mut t.rios, row.rios),
            (&mut t.wios, row.wios),
            (&mut t.dbytes, row.dbytes),
            (&mut t.dios, row.dios),
        ] {
            *slot = slot.saturating_add(value.unwrap_or(0));
        }
        t.devices = t.devices.saturating_add(1);
    }
    Ok(t)
}

/// Iterator over the PIDs of `cgroup.procs` / `tasks` (one per line).
#[derive(Clone, Debug)]
pub struct Pids<'a> {
    lines: Lines<'a>,
}

/// PIDs listed in `cgroup.procs`.
pub fn pids(buf: &[u8]) -> Pids<'_> {
    Pids { lines: lines(buf) }
}

impl Iterator for Pids<'_> {
    type Item = Result<u32, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            let line = trim_ascii(line);
            if line.is_empty() {
                continue;
            }
            return Some(parse_u32(line));
        }
        None
    }
}

/// Number of PIDs in `cgroup.procs` (an empty file is 0, a bad line an error).
pub fn count_pids(buf: &[u8]) -> Result<u64, ParseError> {
    let mut n: u64 = 0;
    for pid in pids(buf) {
        pid?;
        n += 1;
    }
    Ok(n)
}

/// Looks up one key of a flat-keyed file without a struct (first match).
pub fn lookup_key(buf: &[u8], key: &[u8]) -> Result<Option<u64>, ParseError> {
    for (k, v) in key_values(buf) {
        if k == key {
            return parse_u64(v).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat_v1() {
        let s = parse_memory_stat(
            b"cache 11472896\nrss 13635584\nhierarchical_memory_limit 9223372036854771712\n\
              total_inactive_file 8044544\nnew_key 5\n",
        )
        .unwrap();
        assert_eq!(s.cache, Some(11_472_896));
        assert_eq!(s.rss, Some(13_635_584));
        assert_eq!(s.total_inactive_file, Some(8_044_544));
        assert_eq!(s.hierarchical_limit(), Some(Limit::Unlimited));
        assert_eq!(s.swap, None);
        assert_eq!(s.anon, None);
        assert_eq!(s.inactive_file_hierarchical(), Some(8_044_544));
        assert_eq!(parse_memory_stat(b""), Err(ParseError::Empty));
        assert_eq!(
            parse_memory_stat(b"cache x\n"),
            Err(ParseError::InvalidNumber)
        );
    }

    #[test]
    fn cpu_max() {
        assert_eq!(
            parse_cpu_max(b"max 100000\n"),
            Ok(CpuMax {
                quota: Limit::Unlimited,
                period: 100_000
            })
        );
        assert_eq!(
            parse_cpu_max(b"50000 100000\n"),
            Ok(CpuMax {
                quota: Limit::Bytes(50_000),
                period: 100_000
            })
        );
        assert_eq!(parse_cpu_max(b"max\n"), Err(ParseError::MissingField));
        assert_eq!(parse_cpu_max(b""), Err(ParseError::Empty));
    }

    #[test]
    fn blkio() {
        let buf =
            b"8:0 Read 1871872\n8:0 Write 40960\n8:0 Total 1912832\n253:0 Read 5\nTotal 3825664\n";
        let rows: Vec<_> = blkio_rows(buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[2].device,
            Device {
                major: 253,
                minor: 0
            }
        );
        let t = parse_blkio_totals(buf).unwrap();
        assert_eq!((t.read, t.write, t.rows), (1_871_877, 40_960, 3));
        assert_eq!(blkio_rows(b"Total 0\n").count(), 0);
    }

    #[test]
    fn io_stat() {
        let rows: Vec<_> = io_stat_rows(b"8:16 rbytes=1 wbytes=2 rios=3 wios=4 cost.x=9 junk\n")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].rbytes, Some(1));
        assert_eq!(rows[0].wios, Some(4));
        assert_eq!(rows[0].dbytes, None);
        assert_eq!(rows[0].device.to_string(), "8:16");
        let t = parse_io_stat_totals(b"8:0 rbytes=1 wios=2\n8:16 rbytes=10 dios=3\n").unwrap();
        assert_eq!(
            (t.rbytes, t.wios, t.dios, t.wbytes, t.devices),
            (11, 2, 3, 0, 2)
        );
        assert_eq!(
            parse_io_stat_totals(b"8:0 rbytes=x\n"),
            Err(ParseError::InvalidNumber)
        );
    }

    #[test]
    fn percpu_and_pids() {
        let s = parse_usage_percpu(b"10 0 30 \n").unwrap();
        assert_eq!((s.count, s.nonzero, s.sum), (3, 2, 40));
        assert_eq!(count_pids(b"1\n22\n333\n"), Ok(3));
        assert_eq!(count_pids(b""), Ok(0));
        assert_eq!(count_pids(b"1\nx\n"), Err(ParseError::InvalidNumber));
        assert_eq!(lookup_key(b"a 1\nb 2\n", b"b"), Ok(Some(2)));
    }
}
