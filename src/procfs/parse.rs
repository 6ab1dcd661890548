//! Parsers for /proc pseudo-files (host-wide and per PID).
//!
//! Same contract as the cgroup parsers: pure functions over the bytes of one
//! file, no allocation, text results borrow the input, never a panic, and
//! multi-row files are iterators yielding one `Result` per row. Formats:
//! `docs/compat.md` §2.1, §2.3, §3.
//!
//! | file | parser |
//! |---|---|
//! | `/proc/stat` | [`parse_proc_stat`] |
//! | `/proc/meminfo` | [`parse_meminfo`] (bytes) |
//! | `/proc/loadavg` | [`parse_loadavg`] |
//! | `/proc/<pid>/net/dev` | [`net_dev_rows`], [`parse_net_dev_totals`] |
//! | `/proc/<pid>/net/tcp`, `tcp6` | [`parse_tcp_states`] |
//! | `/proc/<pid>/stat`, `task/<tid>/stat` | [`parse_pid_stat`] |
//! | `/proc/<pid>/comm` | [`parse_comm`] |
//! | `/proc/cgroups` | [`proc_cgroups_rows`], [`is_controller_enabled`] |
//! | `/proc/<pid>/cgroup` | [`pid_cgroup_rows`], [`has_controller`], [`controllers_equal`] |
//! | `/proc/<pid>/mountinfo` | [`mountinfo_rows`], [`unescape_octal_into`], [`unescaped`], [`eq_unescaped`] |

pub use crate::parse::ParseError;
use crate::parse::{
    fields, lines, parse_hex_u64, parse_u32, parse_u64, rsplit_once_byte, split_once_byte,
    trim_ascii, Fields, Lines,
};

// ---------------------------------------------------------------- /proc/stat

/// The columns of a `cpu` line of `/proc/stat`, in USER_HZ ticks. Columns the
/// kernel does not print (older kernels print fewer) are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user (includes guest).
    pub user: Option<u64>,
    /// nice (includes guest_nice).
    pub nice: Option<u64>,
    /// system.
    pub system: Option<u64>,
    /// idle.
    pub idle: Option<u64>,
    /// iowait (2.5.41+).
    pub iowait: Option<u64>,
    /// irq (2.6.0+).
    pub irq: Option<u64>,
    /// softirq (2.6.0+).
    pub softirq: Option<u64>,
    /// steal (2.6.11+).
    pub steal: Option<u64>,
    /// guest (2.6.24+), already counted in `user`.
    pub guest: Option<u64>,
    /// guest_nice (2.6.33+), already counted in `nice`.
    pub guest_nice: Option<u64>,
}

impl CpuTimes {
    /// Sum of user..steal (guest columns excluded: already inside user/nice),
    /// saturating: the host total for CPU percentages.
    pub fn total_ticks(&self) -> u64 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .fold(0u64, |acc, v| acc.saturating_add(v.unwrap_or(0)))
    }

    /// Sum of the first seven columns (user..softirq), exactly what the Docker
    /// daemon uses as `system_cpu_usage` for `docker stats`.
    pub fn docker_total_ticks(&self) -> u64 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
        ]
        .iter()
        .fold(0u64, |acc, v| acc.saturating_add(v.unwrap_or(0)))
    }

    fn from_fields(mut f: Fields<'_>) -> Result<CpuTimes, ParseError> {
        let mut out = CpuTimes::default();
        let slots = [
            &mut out.user,
            &mut out.nice,
            &mut out.system,
            &mut out.idle,
            &mut out.iowait,
            &mut out.irq,
            &mut out.softirq,
            &mut out.steal,
            &mut out.guest,
            &mut out.guest_nice,
        ];
        let mut filled = 0;
        for slot in slots {
            let Some(field) = f.next() else { break };
            *slot = Some(parse_u64(field)?);
            filled += 1;
        }
        if filled < 4 {
            return Err(ParseError::MissingField);
        }
        Ok(out)
    }
}

/// What the agent needs from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// The aggregate `cpu` line.
    pub cpu: Option<CpuTimes>,
    /// Number of `cpuN` lines (online CPUs).
    pub cpu_lines: u32,
    /// Boot time, Unix seconds.
    pub btime: Option<u64>,
    /// Context switches since boot.
    pub ctxt: Option<u64>,
    /// Forks since boot.
    pub processes: Option<u64>,
    /// Runnable tasks now.
    pub procs_running: Option<u64>,
    /// Tasks blocked on IO now.
    pub procs_blocked: Option<u64>,
}

/// Parses `/proc/stat` (the `cpu` line, `cpuN` count, btime and a few counters).
pub fn parse_proc_stat(buf: &[u8]) -> Result<ProcStat, ParseError> {
    if trim_ascii(buf).is_empty() {
        return Err(ParseError::Empty);
    }
    let mut out = ProcStat::default();
    for line in lines(buf) {
        let mut f = fields(line);
        let Some(key) = f.next() else { continue };
        match key {
            b"cpu" => out.cpu = Some(CpuTimes::from_fields(f)?),
            b"btime" | b"ctxt" | b"processes" | b"procs_running" | b"procs_blocked" => {
                let value = parse_u64(f.next().ok_or(ParseError::MissingField)?)?;
                let slot = match key {
                    b"btime" => &mut out.btime,
                    b"ctxt" => &mut out.ctxt,
                    b"processes" => &mut out.processes,
                    b"procs_running" => &mut out.procs_running,
                    _ => &mut out.procs_blocked,
                };
                *slot = Some(value);
            }
            _ => {
                if let Some(n) = key.strip_prefix(b"cpu") {
                    if n.iter().all(u8::is_ascii_digit) {
                        out.cpu_lines = out.cpu_lines.saturating_add(1);
                    }
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- /proc/meminfo

/// `/proc/meminfo`, every value in **bytes** (`kB` lines × 1024; lines without
/// a unit, such as `HugePages_Total`, are kept as printed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meminfo {
    /// MemTotal.
    pub mem_total: Option<u64>,
    /// MemFree.
    pub mem_free: Option<u64>,
    /// MemAvailable (3.14+).
    pub mem_available: Option<u64>,
    /// Buffers.
    pub buffers: Option<u64>,
    /// Cached.
    pub cached: Option<u64>,
    /// SwapCached.
    pub swap_cached: Option<u64>,
    /// Active.
    pub active: Option<u64>,
    /// Inactive.
    pub inactive: Option<u64>,
    /// SwapTotal.
    pub swap_total: Option<u64>,
    /// SwapFree.
    pub swap_free: Option<u64>,
    /// Shmem.
    pub shmem: Option<u64>,
    /// SReclaimable.
    pub s_reclaimable: Option<u64>,
}

fn parse_meminfo_value(value: &[u8]) -> Result<u64, ParseError> {
    let mut f = fields(value);
    let number = parse_u64(f.next().ok_or(ParseError::MissingField)?)?;
    match f.next() {
        None => Ok(number),
        Some(b"kB") if f.next().is_none() => number.checked_mul(1024).ok_or(ParseError::Overflow),
        Some(_) => Err(ParseError::Malformed("meminfo unit")),
    }
}

/// Parses `/proc/meminfo`; keys in any order, unknown keys ignored (their
/// values are not even checked).
pub fn parse_meminfo(buf: &[u8]) -> Result<Meminfo, ParseError> {
    if trim_ascii(buf).is_empty() {
        return Err(ParseError::Empty);
    }
    let mut out = Meminfo::default();
    for line in lines(buf) {
        let Some((key, value)) = split_once_byte(line, b':') else {
            continue;
        };
        let slot = match trim_ascii(key) {
            b"MemTotal" => &mut out.mem_total,
            b"MemFree" => &mut out.mem_free,
            b"MemAvailable" => &mut out.mem_available,
            b"Buffers" => &mut out.buffers,
            b"Cached" => &mut out.cached,
            b"SwapCached" => &mut out.swap_cached,
            b"Active" => &mut out.active,
            b"Inactive" => &mut out.inactive,
            b"SwapTotal" => &mut out.swap_total,
            b"SwapFree" => &mut out.swap_free,
            b"Shmem" => &mut out.shmem,
            b"SReclaimable" => &mut out.s_reclaimable,
            _ => continue,
        };
        *slot = Some(parse_meminfo_value(value)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- /proc/loadavg

/// `/proc/loadavg`: `0.42 0.35 0.30 2/611 22013`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadAvg {
    /// 1/5/15-minute load in hundredths (fixed point, as the kernel prints it).
    pub load_centi: [u64; 3],
    /// Runnable tasks (the number before `/`).
    pub runnable: u32,
    /// Total tasks (after `/`).
    pub total: u32,
    /// Most recently assigned PID.
    pub last_pid: u32,
}

impl LoadAvg {
    /// 1-minute load.
    pub fn load1(&self) -> f64 {
        self.load_centi[0] as f64 / 100.0
    }
    /// 5-minute load.
    pub fn load5(&self) -> f64 {
        self.load_centi[1] as f64 / 100.0
    }
    /// 15-minute load.
    pub fn load15(&self) -> f64 {
        self.load_centi[2] as f64 / 100.0
    }
}

/// Parses a non-negative decimal with an optional fraction into hundredths,
/// truncating digits beyond the second (`0.42` → 42, `3` → 300, `1.005` → 100).
pub fn parse_centi(buf: &[u8]) -> Result<u64, ParseError> {
    let (int, frac) = split_once_byte(buf, b'.').unwrap_or((buf, b""));
    let int = parse_u64(int)?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::InvalidNumber);
    }
    let mut centi: u64 = 0;
    for i in 0..2 {
        let d = frac.get(i).map_or(0, |b| u64::from(b - b'0'));
        centi = centi * 10 + d;
    }
    int.checked_mul(100)
        .and_then(|v| v.checked_add(centi))
        .ok_or(ParseError::Overflow)
}

/// Parses `/proc/loadavg`.
pub fn parse_loadavg(buf: &[u8]) -> Result<LoadAvg, ParseError> {
    let mut f = fields(buf);
    let mut out = LoadAvg::default();
    let first = f.next().ok_or(ParseError::Empty)?;
    out.load_centi[0] = parse_centi(first)?;
    for slot in out.load_centi.iter_mut().skip(1) {
        *slot = parse_centi(f.next().ok_or(ParseError::MissingField)?)?;
    }
    let tasks = f.next().ok_or(ParseError::MissingField)?;
    let (runnable, total) =
        split_once_byte(tasks, b'/').ok_or(ParseError::Malformed("loadavg tasks"))?;
    out.runnable = parse_u32(runnable)?;
    out.total = parse_u32(total)?;
    out.last_pid = parse_u32(f.next().ok_or(ParseError::MissingField)?)?;
    Ok(out)
}

// ---------------------------------------------------------------- /proc/<pid>/net/dev

/// One interface of `/proc/<pid>/net/dev`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetDevRow<'a> {
    /// Interface name (borrowed, trimmed).
    pub name: &'a [u8],
    /// Receive bytes (column 1).
    pub rx_bytes: u64,
    /// Receive packets.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errs: u64,
    /// Receive drops.
    pub rx_drop: u64,
    /// Receive FIFO errors.
    pub rx_fifo: u64,
    /// Receive frame errors.
    pub rx_frame: u64,
    /// Receive compressed.
    pub rx_compressed: u64,
    /// Receive multicast.
    pub rx_multicast: u64,
    /// Transmit bytes (column 9).
    pub tx_bytes: u64,
    /// Transmit packets.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errs: u64,
    /// Transmit drops.
    pub tx_drop: u64,
    /// Transmit FIFO errors.
    pub tx_fifo: u64,
    /// Collisions.
    pub tx_colls: u64,
    /// Carrier errors.
    pub tx_carrier: u64,
    /// Transmit compressed.
    pub tx_compressed: u64,
}

impl NetDevRow<'_> {
    /// True for the loopback interface, which Docker's numbers leave out.
    pub fn is_loopback(&self) -> bool {
        self.name == b"lo"
    }
}

/// Iterator over the interfaces of `/proc/<pid>/net/dev` (the two header
/// lines are skipped; blank lines too).
#[derive(Clone, Debug)]
pub struct NetDevRows<'a> {
    lines: Lines<'a>,
}

/// Rows of `/proc/<pid>/net/dev`.
pub fn net_dev_rows(buf: &[u8]) -> NetDevRows<'_> {
    let mut lines = lines(buf);
    lines.next();
    lines.next();
    NetDevRows { lines }
}

fn parse_net_dev_line(line: &[u8]) -> Result<NetDevRow<'_>, ParseError> {
    // The name may be glued to the first counter (`eth0:123`), so split at the
    // first ':' rather than on whitespace.
    let (name, counters) = split_once_byte(line, b':').ok_or(ParseError::MissingField)?;
    let name = trim_ascii(name);
    if name.is_empty() {
        return Err(ParseError::Malformed("net/dev interface name"));
    }
    let mut row = NetDevRow {
        name,
        ..NetDevRow::default()
    };
    let mut f = fields(counters);
    for slot in [
        &mut row.rx_bytes,
        &mut row.rx_packets,
        &mut row.rx_errs,
        &mut row.rx_drop,
        &mut row.rx_fifo,
        &mut row.rx_frame,
        &mut row.rx_compressed,
        &mut row.rx_multicast,
        &mut row.tx_bytes,
        &mut row.tx_packets,
        &mut row.tx_errs,
        &mut row.tx_drop,
        &mut row.tx_fifo,
        &mut row.tx_colls,
        &mut row.tx_carrier,
        &mut row.tx_compressed,
    ] {
        *slot = parse_u64(f.next().ok_or(ParseError::MissingField)?)?;
    }
    Ok(row)
}

impl<'a> Iterator for NetDevRows<'a> {
    type Item = Result<NetDevRow<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            if trim_ascii(line).is_empty() {
                continue;
            }
            return Some(parse_net_dev_line(line));
        }
        None
    }
}

/// Counters summed over every interface except `lo` (what Docker and the
/// Outlyer `base.network.*` metrics report), saturating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetDevTotals {
    /// Receive bytes.
    pub rx_bytes: u64,
    /// Receive packets.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errs: u64,
    /// Receive drops.
    pub rx_drop: u64,
    /// Transmit bytes.
    pub tx_bytes: u64,
    /// Transmit packets.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errs: u64,
    /// Transmit drops.
    pub tx_drop: u64,
    /// Interfaces summed (`lo` excluded).
    pub interfaces: u32,
}

/// Sums `/proc/<pid>/net/dev` over all interfaces but `lo`; the first bad row
/// is an error.
pub fn parse_net_dev_totals(buf: &[u8]) -> Result<NetDevTotals, ParseError> {
    let mut t = NetDevTotals::default();
    for row in net_dev_rows(buf) {
        let row = row?;
        if row.is_loopback() {
            continue;
        }
        for (slot, value) in [
            (&mut t.rx_bytes, row.rx_bytes),
            (&mut t.rx_packets, row.rx_packets),
            (&mut t.rx_errs, row.rx_errs),
            (&mut t.rx_drop, row.rx_drop),
            (&mut t.tx_bytes, row.tx_bytes),
            (&mut t.tx_packets, row.tx_packets),
            (&mut t.tx_errs, row.tx_errs),
            (&mut t.tx_drop, row.tx_drop),
        ] {
            *slot = slot.saturating_add(value);
        }
        t.interfaces = t.interfaces.saturating_add(1);
    }
    Ok(t)
}

// ---------------------------------------------------------------- /proc/<pid>/net/tcp{,6}

/// cAdvisor's `tcp_state` label values, index = state − 1 (0x01..=0x0B).
pub const TCP_STATE_NAMES: [&str; 11] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
];

/// Histogram of socket states in `/proc/<pid>/net/tcp` and `tcp6`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStates {
    /// Sockets per state; index = state − 1, names in [`TCP_STATE_NAMES`].
    pub counts: [u64; 11],
    /// Rows whose state is outside 0x01..=0x0B.
    pub other: u64,
}

impl TcpStates {
    /// Count for a state number (0x01..=0x0B); 0 for other numbers.
    pub fn get(&self, state: u8) -> u64 {
        usize::from(state)
            .checked_sub(1)
            .and_then(|i| self.counts.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Adds another histogram (tcp + tcp6).
    pub fn merge(&mut self, other: &TcpStates) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.other = self.other.saturating_add(other.other);
    }

    /// Total sockets counted.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.other, |acc, v| acc.saturating_add(*v))
    }
}

/// Builds the state histogram of `/proc/<pid>/net/tcp` or `tcp6` (header line
/// skipped; only the `st` column, the 4th, is read). A malformed row is an error.
pub fn parse_tcp_states(buf: &[u8]) -> Result<TcpStates, ParseError> {
    let mut out = TcpStates::default();
    let mut rows = lines(buf);
    rows.next();
    for line in rows {
        let mut f = fields(line);
        if f.next().is_none() {
            continue;
        }
        f.next().ok_or(ParseError::MissingField)?;
        f.next().ok_or(ParseError::MissingField)?;
        let st = f.next().ok_or(ParseError::MissingField)?;
        if st.len() > 2 {
            return Err(ParseError::Malformed("tcp st"));
        }
        let state = parse_hex_u64(st)?;
        match usize::try_from(state)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| out.counts.get_mut(i))
        {
            Some(slot) => *slot += 1,
            None => out.other += 1,
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- /proc/<pid>/stat

/// The fields of `/proc/<pid>/stat` the agent uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidStat<'a> {
    /// Field 1.
    pub pid: u32,
    /// Field 2, between the first `(` and the last `)` (may hold spaces and `)`).
    pub comm: &'a [u8],
    /// Field 3, e.g. `b'S'`, `b'R'`, `b'D'`, `b'Z'`.
    pub state: u8,
    /// Field 4.
    pub ppid: u32,
    /// Field 10.
    pub minflt: u64,
    /// Field 12.
    pub majflt: u64,
    /// Field 14, ticks.
    pub utime: u64,
    /// Field 15, ticks.
    pub stime: u64,
    /// Field 20.
    pub num_threads: u64,
    /// Field 22, ticks since boot.
    pub starttime: u64,
    /// Field 23, bytes.
    pub vsize: u64,
    /// Field 24, pages.
    pub rss: u64,
}

/// Parses `/proc/<pid>/stat` (or `task/<tid>/stat`).
pub fn parse_pid_stat(buf: &[u8]) -> Result<PidStat<'_>, ParseError> {
    let (pid, comm, rest) = split_pid_stat(buf)?;
    let mut f = fields(rest);
    let state = pid_stat_state(&mut f)?;
    // `n` skips that many fields after the last one taken.
    let mut field = |n: usize| f.nth(n).ok_or(ParseError::MissingField);
    let ppid = parse_u32(field(0)?)?; // 4
    let minflt = parse_u64(field(5)?)?; // 10
    let majflt = parse_u64(field(1)?)?; // 12
    let utime = parse_u64(field(1)?)?; // 14
    let stime = parse_u64(field(0)?)?; // 15
    let num_threads = parse_u64(field(4)?)?; // 20
    let starttime = parse_u64(field(1)?)?; // 22
    let vsize = parse_u64(field(0)?)?; // 23
    let rss = parse_u64(field(0)?)?; // 24
    Ok(PidStat {
        pid,
        comm,
        state,
        ppid,
        minflt,
        majflt,
        utime,
        stime,
        num_threads,
        starttime,
        vsize,
        rss,
    })
}

/// Only field 3 (the state letter) of `/proc/<pid>/stat`: what the load
/// average needs per task, without converting the other 40-odd fields.
/// Agrees with [`parse_pid_stat`] whenever that succeeds.
pub fn parse_pid_state(buf: &[u8]) -> Result<u8, ParseError> {
    let (_, _, rest) = split_pid_stat(buf)?;
    pid_stat_state(&mut fields(rest))
}

/// `pid`, `comm` and the fields after `)` of a `/proc/<pid>/stat` text.
fn split_pid_stat(buf: &[u8]) -> Result<(u32, &[u8], &[u8]), ParseError> {
    let (head, after_open) =
        split_once_byte(buf, b'(').ok_or(ParseError::Malformed("stat: no '('"))?;
    let pid = parse_u32(trim_ascii(head))?;
    let (comm, rest) =
        rsplit_once_byte(after_open, b')').ok_or(ParseError::Malformed("stat: no ')'"))?;
    Ok((pid, comm, rest))
}

/// Field 3, the state letter, from the fields after `)`.
fn pid_stat_state(f: &mut Fields<'_>) -> Result<u8, ParseError> {
    match f.next() {
        Some(&[state]) => Ok(state),
        Some(_) => Err(ParseError::Malformed("stat state")),
        None => Err(ParseError::MissingField),
    }
}

/// Fields 3 (state) and 20 (`num_threads`) of `/proc/<pid>/stat`, what the
/// load average of single-threaded processes needs, without converting the
/// fields between them. Agrees with [`parse_pid_stat`]
/// whenever that succeeds.
pub fn parse_pid_state_threads(buf: &[u8]) -> Result<(u8, u64), ParseError> {
    let (_, _, rest) = split_pid_stat(buf)?;
    let mut f = fields(rest);
    let state = pid_stat_state(&mut f)?;
    // Fields 4 to 19 skipped, then 20.
    let threads = f.nth(16).ok_or(ParseError::MissingField)?;
    Ok((state, parse_u64(threads)?))
}
/// Parses `/proc/<pid>/comm`: the name without its trailing newline (inner
/// and leading spaces are part of the name and kept).
pub fn parse_comm(buf: &[u8]) -> Result<&[u8], ParseError> {
    let name = buf.strip_suffix(b"\n").unwrap_or(buf);
    if name.is_empty() {
        return Err(ParseError::Empty);
    }
    if name.len() > 64 {
        return Err(ParseError::TooLong);
    }
    Ok(name)
}

// ---------------------------------------------------------------- /proc/cgroups

/// One controller line of `/proc/cgroups`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroupsRow<'a> {
    /// Controller name (`memory`, `cpuacct`, …).
    pub name: &'a [u8],
    /// Hierarchy id (0 for v2 or not mounted).
    pub hierarchy: u32,
    /// Number of cgroups.
    pub num_cgroups: u64,
    /// False when disabled on the kernel command line (`cgroup_disable=memory`).
    pub enabled: bool,
}

/// Iterator over `/proc/cgroups` rows (`#` header skipped).
#[derive(Clone, Debug)]
pub struct ProcCgroupsRows<'a> {
    lines: Lines<'a>,
}

/// Rows of `/proc/cgroups`.
pub fn proc_cgroups_rows(buf: &[u8]) -> ProcCgroupsRows<'_> {
    ProcCgroupsRows { lines: lines(buf) }
}

fn parse_proc_cgroups_line(line: &[u8]) -> Result<ProcCgroupsRow<'_>, ParseError> {
    let mut f = fields(line);
    let name = f.next().ok_or(ParseError::MissingField)?;
    let hierarchy = parse_u32(f.next().ok_or(ParseError::MissingField)?)?;
    let num_cgroups = parse_u64(f.next().ok_or(ParseError::MissingField)?)?;
    let enabled = match f.next().ok_or(ParseError::MissingField)? {
        b"0" => false,
        b"1" => true,
        _ => return Err(ParseError::Malformed("cgroups enabled")),
    };
    Ok(ProcCgroupsRow {
        name,
        hierarchy,
        num_cgroups,
        enabled,
    })
}

impl<'a> Iterator for ProcCgroupsRows<'a> {
    type Item = Result<ProcCgroupsRow<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            let t = trim_ascii(line);
            if t.is_empty() || t.first() == Some(&b'#') {
                continue;
            }
            return Some(parse_proc_cgroups_line(t));
        }
        None
    }
}

/// Whether `/proc/cgroups` lists `controller` as enabled: `Some(true/false)`,
/// or `None` when the kernel does not know it. Bad rows are skipped.
pub fn is_controller_enabled(buf: &[u8], controller: &str) -> Option<bool> {
    proc_cgroups_rows(buf)
        .filter_map(Result::ok)
        .find(|row| row.name == controller.as_bytes())
        .map(|row| row.enabled)
}

// ---------------------------------------------------------------- /proc/<pid>/cgroup

/// One `id:controllers:path` line of `/proc/<pid>/cgroup`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidCgroupRow<'a> {
    /// Hierarchy id (0 for the v2 / unified line).
    pub hierarchy_id: u32,
    /// Comma-separated controllers as printed (`cpu,cpuacct`, `name=systemd`, empty for v2).
    pub controllers: &'a [u8],
    /// Path inside the hierarchy (may contain ':'), without ` (deleted)`.
    pub path: &'a [u8],
    /// The cgroup was removed (path ended in ` (deleted)`).
    pub deleted: bool,
}

impl PidCgroupRow<'_> {
    /// True when this row lists `controller` (set comparison, order-free).
    pub fn has_controller(&self, controller: &str) -> bool {
        has_controller(self.controllers, controller)
    }

    /// True for the controller-less v2 line `0::/path`.
    pub fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }
}

/// Iterator over `/proc/<pid>/cgroup` rows.
#[derive(Clone, Debug)]
pub struct PidCgroupRows<'a> {
    lines: Lines<'a>,
}

/// Rows of `/proc/<pid>/cgroup`.
pub fn pid_cgroup_rows(buf: &[u8]) -> PidCgroupRows<'_> {
    PidCgroupRows { lines: lines(buf) }
}

const DELETED_SUFFIX: &[u8] = b" (deleted)";

fn parse_pid_cgroup_line(line: &[u8]) -> Result<PidCgroupRow<'_>, ParseError> {
    let (id, rest) = split_once_byte(line, b':').ok_or(ParseError::MissingField)?;
    let (controllers, path) = split_once_byte(rest, b':').ok_or(ParseError::MissingField)?;
    let hierarchy_id = parse_u32(id)?;
    let (path, deleted) = match path.strip_suffix(DELETED_SUFFIX) {
        Some(p) => (p, true),
        None => (path, false),
    };
    if path.is_empty() {
        return Err(ParseError::Malformed("cgroup path"));
    }
    Ok(PidCgroupRow {
        hierarchy_id,
        controllers,
        path,
        deleted,
    })
}

impl<'a> Iterator for PidCgroupRows<'a> {
    type Item = Result<PidCgroupRow<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            if line.is_empty() {
                continue;
            }
            return Some(parse_pid_cgroup_line(line));
        }
        None
    }
}

/// True when the comma-separated `list` (controllers of a cgroup line, a
/// mount's super options, a mount directory name) contains `name` exactly.
pub fn has_controller(list: &[u8], name: &str) -> bool {
    list.split(|&b| b == b',')
        .any(|item| item == name.as_bytes())
}

/// True when two comma-separated lists hold the same set of names
/// (`cpu,cpuacct` == `cpuacct,cpu`; duplicates and empty items ignored).
pub fn controllers_equal(a: &[u8], b: &[u8]) -> bool {
    fn subset(a: &[u8], b: &[u8]) -> bool {
        a.split(|&c| c == b',')
            .filter(|item| !item.is_empty())
            .all(|item| b.split(|&c| c == b',').any(|other| other == item))
    }
    subset(a, b) && subset(b, a)
}

// ---------------------------------------------------------------- mountinfo

/// One line of `/proc/<pid>/mountinfo`. Paths are borrowed **still escaped**
/// (`\040` for space, …); decode with [`unescape_octal_into`] or compare with
/// [`eq_unescaped`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountInfo<'a> {
    /// Field 1.
    pub mount_id: u32,
    /// Field 2.
    pub parent_id: u32,
    /// Field 3 major.
    pub major: u32,
    /// Field 3 minor.
    pub minor: u32,
    /// Field 4: root of the mount within its filesystem (escaped).
    pub root: &'a [u8],
    /// Field 5: mount point (escaped).
    pub mount_point: &'a [u8],
    /// Field 6: per-mount options.
    pub mount_options: &'a [u8],
    /// Optional fields (`shared:16 master:3`), space-separated, possibly empty.
    pub optional_fields: &'a [u8],
    /// Filesystem type after the `-` separator (`cgroup`, `cgroup2`, …).
    pub fstype: &'a [u8],
    /// Mount source (escaped).
    pub source: &'a [u8],
    /// Per-superblock options (`rw,cpu,cpuacct` for cgroup v1).
    pub super_options: &'a [u8],
}

/// Iterator over mountinfo lines.
#[derive(Clone, Debug)]
pub struct MountInfoRows<'a> {
    lines: Lines<'a>,
}

/// Rows of `/proc/<pid>/mountinfo`.
pub fn mountinfo_rows(buf: &[u8]) -> MountInfoRows<'_> {
    MountInfoRows { lines: lines(buf) }
}

fn parse_mountinfo_line(line: &[u8]) -> Result<MountInfo<'_>, ParseError> {
    let mut f = fields(line);
    let mut next = || f.next().ok_or(ParseError::MissingField);
    let mount_id = parse_u32(next()?)?;
    let parent_id = parse_u32(next()?)?;
    let (major, minor) = split_once_byte(next()?, b':').ok_or(ParseError::Malformed("maj:min"))?;
    let (major, minor) = (parse_u32(major)?, parse_u32(minor)?);
    let root = next()?;
    let mount_point = next()?;
    let mount_options = next()?;
    // Optional fields run until a lone "-"; keep them as one borrowed span.
    let mut optional_fields: &[u8] = b"";
    let opt_start = f.remainder();
    let mut opt_first: Option<usize> = None;
    let mut opt_end = 0usize;
    loop {
        let field = f.next().ok_or(ParseError::Malformed("mountinfo: no '-'"))?;
        if field == b"-" {
            break;
        }
        // Offsets of the field inside `opt_start`, for the borrowed span.
        let consumed = opt_start.len().saturating_sub(f.remainder().len());
        let begin = consumed.saturating_sub(field.len());
        opt_first.get_or_insert(begin);
        opt_end = consumed;
    }
    if let Some(begin) = opt_first {
        optional_fields = opt_start.get(begin..opt_end).unwrap_or(b"");
    }
    let fstype = f.next().ok_or(ParseError::MissingField)?;
    let source = f.next().ok_or(ParseError::MissingField)?;
    let super_options = f.next().unwrap_or(b"");
    Ok(MountInfo {
        mount_id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        mount_options,
        optional_fields,
        fstype,
        source,
        super_options,
    })
}

impl<'a> Iterator for MountInfoRows<'a> {
    type Item = Result<MountInfo<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            if trim_ascii(line).is_empty() {
                continue;
            }
            return Some(parse_mountinfo_line(line));
        }
        None
    }
}

/// Decodes one `\ooo` escape at the start of `src` (a backslash and exactly
/// three octal digits with a value ≤ 255).
fn octal_escape(src: &[u8]) -> Option<u8> {
    let [b'\\', a, b, c, ..] = *src else {
        return None;
    };
    if ![a, b, c].iter().all(|d| (b'0'..=b'7').contains(d)) {
        return None;
    }
    let value = u32::from(a - b'0') * 64 + u32::from(b - b'0') * 8 + u32::from(c - b'0');
    u8::try_from(value).ok()
}

/// Iterator over the decoded bytes of an escaped mountinfo field; a backslash
/// not followed by a valid octal escape is passed through literally.
#[derive(Clone, Debug)]
pub struct Unescaped<'a> {
    rest: &'a [u8],
}

/// Decodes `\040`-style octal escapes lazily.
pub fn unescaped(src: &[u8]) -> Unescaped<'_> {
    Unescaped { rest: src }
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if let Some(b) = octal_escape(self.rest) {
            self.rest = self.rest.get(4..).unwrap_or(b"");
            return Some(b);
        }
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }
}

/// Decodes octal escapes of `src` into `dst`, returning the decoded length;
/// `TooLong` when `dst` is too small.
pub fn unescape_octal_into(src: &[u8], dst: &mut [u8]) -> Result<usize, ParseError> {
    let mut n = 0usize;
    for b in unescaped(src) {
        *dst.get_mut(n).ok_or(ParseError::TooLong)? = b;
        n += 1;
    }
    Ok(n)
}

/// True when escaped `escaped` decodes to exactly `plain`.
pub fn eq_unescaped(escaped: &[u8], plain: &[u8]) -> bool {
    unescaped(escaped).eq(plain.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat() {
        let s = parse_proc_stat(
            b"cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n\
              cpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\nbtime 1700000000\n",
        )
        .unwrap();
        let cpu = s.cpu.unwrap();
        assert_eq!(cpu.user, Some(10_132_153));
        assert_eq!(cpu.guest_nice, Some(0));
        assert_eq!(s.cpu_lines, 2);
        assert_eq!(s.btime, Some(1_700_000_000));
        assert_eq!(
            cpu.total_ticks(),
            10_132_153 + 290_696 + 3_084_719 + 46_828_483 + 16_683 + 25_195
        );
    }

    #[test]
    fn pid_stat_weird_comm() {
        let s = parse_pid_stat(
            b"1234 (a) b (c)) S 1200 1200 1200 0 -1 4194624 512 0 7 0 13 7 0 0 20 0 3 0 98765 103272448 1650 18446744073709551615 1\n",
        )
        .unwrap();
        assert_eq!(s.comm, b"a) b (c)");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1200);
        assert_eq!((s.minflt, s.majflt), (512, 7));
        assert_eq!((s.utime, s.stime), (13, 7));
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.starttime, 98_765);
        assert_eq!(s.vsize, 103_272_448);
        assert_eq!(s.rss, 1650);
    }

    #[test]
    fn loadavg_and_centi() {
        assert_eq!(parse_centi(b"0.42"), Ok(42));
        assert_eq!(parse_centi(b"3"), Ok(300));
        assert_eq!(parse_centi(b"1.5"), Ok(150));
        assert_eq!(parse_centi(b"1.009"), Ok(100));
        assert_eq!(parse_centi(b".5"), Err(ParseError::Empty));
        assert_eq!(parse_centi(b"1.x"), Err(ParseError::InvalidNumber));
        assert_eq!(
            parse_centi(b"184467440737095517"),
            Err(ParseError::Overflow)
        );
        let l = parse_loadavg(b"12.34 5.00 0.01 7/900 4242\n").unwrap();
        assert_eq!(l.load_centi, [1234, 500, 1]);
        assert_eq!((l.runnable, l.total, l.last_pid), (7, 900, 4242));
        assert_eq!(parse_loadavg(b"1 2 3 4/5"), Err(ParseError::MissingField));
        assert_eq!(parse_loadavg(b""), Err(ParseError::Empty));
    }

    #[test]
    fn meminfo_units() {
        let m =
            parse_meminfo(b"MemTotal:  2 kB\nHugePages_Total:  7\nCached: 3 kB\nWeird: x y z\n")
                .unwrap();
        assert_eq!(m.mem_total, Some(2048));
        assert_eq!(m.cached, Some(3072));
        assert_eq!(m.mem_available, None);
        assert_eq!(parse_meminfo(b"MemFree: 5\n").unwrap().mem_free, Some(5));
        assert_eq!(
            parse_meminfo(b"MemFree: 5 kB extra\n"),
            Err(ParseError::Malformed("meminfo unit"))
        );
    }

    #[test]
    fn net_dev_forms() {
        let buf = b"h1\nh2\n  eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n\n    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nbad 1 2\n  x: 1 2\n";
        let rows: Vec<_> = net_dev_rows(buf).collect();
        assert_eq!(rows.len(), 4);
        let eth0 = rows[0].unwrap();
        assert_eq!(
            (eth0.name, eth0.rx_bytes, eth0.tx_bytes, eth0.tx_compressed),
            (&b"eth0"[..], 1, 9, 16)
        );
        assert!(rows[1].unwrap().is_loopback());
        assert_eq!(rows[2], Err(ParseError::MissingField));
        assert_eq!(rows[3], Err(ParseError::MissingField));
        let good = buf.split(|&b| b == b'b').next().unwrap_or(b"");
        assert!(good.ends_with(b"0\n"));
        let t = parse_net_dev_totals(good).unwrap();
        assert_eq!((t.interfaces, t.rx_bytes, t.tx_packets), (1, 1, 10));
    }

    #[test]
    fn tcp_states() {
        let buf = b"  sl  local rem st\n 0: a b 0A x\n 1: a b 01 x\n 2: a b 0C x\n\n 3: a b 01\n";
        let t = parse_tcp_states(buf).unwrap();
        assert_eq!((t.get(0x0A), t.get(0x01), t.other, t.total()), (1, 2, 1, 4));
        assert_eq!(t.get(0), 0);
        assert_eq!(t.get(200), 0);
        assert_eq!(
            parse_tcp_states(b"h\n 0: a b\n"),
            Err(ParseError::MissingField)
        );
        assert_eq!(
            parse_tcp_states(b"h\n 0: a b 001\n"),
            Err(ParseError::Malformed("tcp st"))
        );
        assert_eq!(parse_tcp_states(b""), Ok(TcpStates::default()));
    }

    #[test]
    fn pid_cgroup_lines() {
        let rows: Vec<_> =
            pid_cgroup_rows(b"3:cpuacct,cpu:/docker/a:b (deleted)\n0::/\n1:x:\n").collect();
        let r = rows[0].unwrap();
        assert_eq!(
            (r.hierarchy_id, r.controllers, r.path, r.deleted),
            (3, &b"cpuacct,cpu"[..], &b"/docker/a:b"[..], true)
        );
        assert!(r.has_controller("cpu") && !r.has_controller("cpuset") && !r.is_unified());
        assert!(rows[1].unwrap().is_unified());
        assert_eq!(rows[2], Err(ParseError::Malformed("cgroup path")));
        assert!(controllers_equal(b"a,b,a", b"b,a"));
        assert!(!controllers_equal(b"a,b", b"a,c"));
        assert!(!has_controller(b"cpuacct", "cpu"));
    }

    #[test]
    fn proc_cgroups_and_comm() {
        let buf = b"#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\ncpu\t2\t5\t1\nbad\t1\t2\t7\n";
        assert_eq!(is_controller_enabled(buf, "memory"), Some(false));
        assert_eq!(is_controller_enabled(buf, "cpu"), Some(true));
        assert_eq!(is_controller_enabled(buf, "bad"), None);
        assert_eq!(parse_comm(b"kworker/0:1\n"), Ok(&b"kworker/0:1"[..]));
        assert_eq!(parse_comm(b" a b \n"), Ok(&b" a b "[..]));
        assert_eq!(parse_comm(&[b'x'; 65]), Err(ParseError::TooLong));
    }

    #[test]
    fn mountinfo_and_unescape() {
        let line = b"33 24 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 master:2 - cgroup cgroup rw,cpu,cpuacct\n\
                     40 24 0:30 / /mnt/a\\040b rw - ext4 /dev/sda1 rw\n";
        let rows: Vec<_> = mountinfo_rows(line).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows[0].optional_fields, b"shared:16 master:2");
        assert_eq!(rows[0].fstype, b"cgroup");
        assert!(has_controller(rows[0].super_options, "cpuacct"));
        assert_eq!(rows[1].optional_fields, b"");
        let mut buf = [0u8; 16];
        let n = unescape_octal_into(rows[1].mount_point, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"/mnt/a b");
        assert!(eq_unescaped(rows[1].mount_point, b"/mnt/a b"));
        assert_eq!(
            unescape_octal_into(rows[1].mount_point, &mut [0u8; 3]),
            Err(ParseError::TooLong)
        );
    }
}
