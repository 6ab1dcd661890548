//! Synthetic host trees (a rootfs with `/proc` and cgroup files) for tests and benches.
//!
//! [`SyntheticHost::create`] writes, under a fresh directory, what the agent
//! reads on a real host: `proc/1/mountinfo`, `proc/cgroups`, `proc/stat`,
//! `proc/meminfo`, `proc/loadavg`, `proc/1/net/dev`, and per container
//! `proc/<pid>/{cgroup,stat,net/dev,net/tcp,net/tcp6}` plus its cgroup files
//! in the chosen [`TreeLayout`]. [`SyntheticHost::advance`] moves every
//! counter forward by a number of seconds, rewriting files in place (same
//! inode), so a collector holding the fds open sees new values.

use crate::registry::ContainerInfo;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the cgroup hierarchies are mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeLayout {
    /// v1, `cpu,cpuacct` co-mounted under `/sys/fs/cgroup` (Ubuntu, Debian, AL2).
    V1Comounted,
    /// CentOS 6 / Amazon Linux 1: `/cgroup/<controller>` mounted apart on the host,
    /// which the user bind-mounted at `<rootfs>/sys/fs/cgroup`. Old-kernel files:
    /// no pids controller, no `oom_kill`, LLONG_MAX as "unlimited".
    V1CentOs6,
    /// v1 with cpu and cpuacct mounted apart plus a controller-less cgroup2
    /// `unified` mount (systemd hybrid; the shape of the local test host).
    Hybrid,
    /// Pure cgroup v2.
    V2,
}

/// How Docker named the container's cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `/docker/<id>`
    Cgroupfs,
    /// `/system.slice/docker-<id>.scope`
    Systemd,
    /// `/kubepods/burstable/pod<uid>/<id>`
    Kubernetes,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    pub layout: TreeLayout,
    pub driver: Driver,
    pub containers: usize,
    /// Memory controller enabled (`cgroup_enable=memory`).
    pub memory_accounting: bool,
    /// Swap accounting (`swapaccount=1`): `memory.memsw.*` and `total_swap`.
    pub swap_accounting: bool,
    /// `/proc/<pid>/cgroup` shows paths relative to a cgroup namespace (`/../…`).
    pub cgroupns_relative: bool,
    /// Host CPUs (lines `cpuN` of `/proc/stat`).
    pub cpus: u32,
}

impl TreeOptions {
    pub fn new(layout: TreeLayout, containers: usize) -> TreeOptions {
        TreeOptions {
            layout,
            driver: match layout {
                TreeLayout::V2 => Driver::Systemd,
                _ => Driver::Cgroupfs,
            },
            containers,
            memory_accounting: true,
            swap_accounting: true,
            cgroupns_relative: false,
            cpus: 4,
        }
    }
}

/// One synthetic container and its counters.
#[derive(Clone, Debug)]
pub struct SynthContainer {
    pub id: String,
    pub name: String,
    pub pid: u32,
    /// Path inside the hierarchies (`/docker/<id>`).
    pub cgroup_path: String,
    /// Cores this container keeps busy (CPU% = 100 × this).
    pub cpu_cores: f64,
    pub cpu_ns: u64,
    pub mem_usage: u64,
    pub mem_limit: Option<u64>,
    pub inactive_file: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Network bytes per second each way.
    pub net_rate: u64,
    /// Block bytes per second each way.
    pub blk_rate: u64,
}

/// A generated rootfs; removed on drop.
pub struct SyntheticHost {
    pub root: PathBuf,
    pub opts: TreeOptions,
    pub containers: Vec<SynthContainer>,
    /// Seconds of simulated time since creation.
    pub elapsed: f64,
    host_ticks: u64,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Where trees go: `OUTLYER_TESTKIT_DIR`, else `/dev/shm` (thousands of
/// small files are written per step), else the temp dir.
fn base_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OUTLYER_TESTKIT_DIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let probe = shm.join(format!("outlyer-probe-{}", std::process::id()));
        if std::fs::write(&probe, b"").is_ok() {
            let _ = std::fs::remove_file(probe);
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

fn write(path: &Path, body: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, body)
}

const LIMIT_V1_UNLIMITED: u64 = 9_223_372_036_854_771_712;
const LIMIT_OLD_UNLIMITED: u64 = 9_223_372_036_854_775_807;
const MEM_TOTAL_KB: u64 = 16_318_004;

impl SyntheticHost {
    /// Writes a fresh tree under the system temp dir.
    pub fn create(opts: TreeOptions) -> io::Result<SyntheticHost> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let root = base_dir().join(format!(
            "outlyer-tree-{}-{}-{n}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&root)?;
        let mut containers = Vec::with_capacity(opts.containers);
        for i in 0..opts.containers {
            let id = format!("{:016x}{:048x}", 0x0c0ffee0_u64 + i as u64, i as u64 * 7919);
            let cgroup_path = match opts.driver {
                Driver::Cgroupfs => format!("/docker/{id}"),
                Driver::Systemd => format!("/system.slice/docker-{id}.scope"),
                Driver::Kubernetes => format!(
                    "/kubepods/burstable/pod{:08x}-0000-4000-8000-{:012x}/{id}",
                    i, i
                ),
            };
            containers.push(SynthContainer {
                id,
                name: format!("synth-{i}"),
                pid: 10_000 + i as u32,
                cgroup_path,
                cpu_cores: if i % 2 == 0 { 0.5 } else { 0.25 },
                cpu_ns: 1_000_000_000 * (i as u64 + 1),
                mem_usage: 50 << 20,
                mem_limit: if i % 3 == 0 { Some(64 << 20) } else { None },
                inactive_file: 10 << 20,
                rx_bytes: 1_000_000,
                tx_bytes: 500_000,
                read_bytes: 4096 * 100,
                write_bytes: 4096 * 10,
                net_rate: 2048,
                blk_rate: 8192,
            });
        }
        let host = SyntheticHost {
            root,
            opts,
            containers,
            elapsed: 0.0,
            host_ticks: 1_000_000,
        };
        host.write_static()?;
        for i in 0..host.containers.len() {
            host.write_container_static(i)?;
        }
        host.write_counters()?;
        Ok(host)
    }

    /// The rootfs to hand to the collector.
    pub fn rootfs(&self) -> &Path {
        &self.root
    }

    /// What Docker would have told the registry about container `i`.
    pub fn container_info(&self, i: usize) -> ContainerInfo {
        let c = &self.containers[i];
        ContainerInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            image: "localbusy:latest".into(),
            labels: vec![
                ("com.example.team".into(), "core".into()),
                ("tier".into(), "web \"front\"".into()),
            ],
            env_tags: vec![],
            pid: c.pid,
            network_mode: "bridge".into(),
            ips: vec![],
            started_at: 1_700_000_000.0 + i as f64,
            cgroup_parent: String::new(),
            fingerprint: format!("00000000-0000-5000-8000-{:012x}", i),
            paused: false,
        }
    }

    /// Host-side directory of a controller (`cpu`, `cpuacct`, `memory`,
    /// `blkio`, `pids`; ignored on v2) for a cgroup path.
    pub fn cgroup_dir(&self, controller: &str, cgroup_path: &str) -> PathBuf {
        let rel = cgroup_path.trim_start_matches('/');
        let base = self.root.join("sys/fs/cgroup");
        match self.opts.layout {
            TreeLayout::V2 => base.join(rel),
            TreeLayout::V1Comounted if controller == "cpu" || controller == "cpuacct" => {
                base.join("cpu,cpuacct").join(rel)
            }
            _ => base.join(controller).join(rel),
        }
    }

    fn controllers(&self) -> Vec<&'static str> {
        let mut v = vec!["cpu", "cpuacct", "blkio"];
        if self.opts.memory_accounting {
            v.push("memory");
        }
        if self.opts.layout != TreeLayout::V1CentOs6 {
            v.push("pids");
        }
        v
    }

    fn write_static(&self) -> io::Result<()> {
        let r = &self.root;
        let o = &self.opts;
        let mut mi = String::from(
            "22 1 0:21 / / rw,relatime - ext4 /dev/vda1 rw\n\
             23 22 0:22 / /proc rw,nosuid - proc proc rw\n",
        );
        let base = r.join("sys/fs/cgroup");
        match o.layout {
            TreeLayout::V1Comounted => {
                mi.push_str("24 22 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n");
                mi.push_str("25 24 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n");
                mi.push_str("26 24 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:7 - cgroup cgroup rw,cpu,cpuacct\n");
                mi.push_str("30 24 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n");
                if o.memory_accounting {
                    mi.push_str(
                        "27 24 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                    );
                }
                mi.push_str("28 24 0:27 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n");
                mi.push_str("29 24 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
                for d in ["cpu,cpuacct", "blkio", "pids", "systemd", "cpuset"] {
                    write(&base.join(d).join("cgroup.procs"), "1\n")?;
                }
                if o.memory_accounting {
                    write(&base.join("memory/cgroup.procs"), "1\n")?;
                }
            }
            TreeLayout::V1CentOs6 => {
                // Host mounts at /cgroup/<c>; the files sit at <rootfs>/sys/fs/cgroup/<c>.
                mi = String::new();
                mi.push_str(
                    "16 1 8:1 / / rw,relatime - ext4 /dev/xvda1 rw,barrier=1,data=ordered\n",
                );
                for (i, c) in ["cpuset", "cpu", "cpuacct", "memory", "blkio"]
                    .iter()
                    .enumerate()
                {
                    if *c == "memory" && !o.memory_accounting {
                        continue;
                    }
                    let _ = writeln!(
                        mi,
                        "{} 16 0:{} / /cgroup/{c} rw,relatime - cgroup cgroup rw,{c}",
                        30 + i,
                        20 + i
                    );
                    write(&base.join(c).join("cgroup.procs"), "1\n")?;
                }
            }
            TreeLayout::Hybrid => {
                mi.push_str("31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n");
                let mut n = 32;
                for c in ["cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"] {
                    if c == "memory" && !o.memory_accounting {
                        continue;
                    }
                    let _ = writeln!(
                        mi,
                        "{n} 31 0:{n} / /sys/fs/cgroup/{c} rw,relatime - cgroup cgroup rw,{c}"
                    );
                    n += 1;
                    write(&base.join(c).join("cgroup.procs"), "1\n")?;
                }
                mi.push_str("40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n");
                mi.push_str(
                    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
                );
                write(&base.join("unified/cgroup.procs"), "1\n")?;
                write(&base.join("unified/cgroup.controllers"), "\n")?;
            }
            TreeLayout::V2 => {
                mi.push_str("35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n");
                write(&base.join("cgroup.procs"), "1\n")?;
                let ctl = if o.memory_accounting {
                    "cpuset cpu io memory hugetlb pids rdma misc\n"
                } else {
                    "cpuset cpu io hugetlb pids rdma misc\n"
                };
                write(&base.join("cgroup.controllers"), ctl)?;
            }
        }
        write(&r.join("proc/1/mountinfo"), &mi)?;
        let mem_enabled = if o.memory_accounting { 1 } else { 0 };
        write(
            &r.join("proc/cgroups"),
            &format!(
                "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t3\t1\ncpu\t1\t3\t1\n\
                 cpuacct\t2\t3\t1\nblkio\t7\t3\t1\nmemory\t4\t26\t{mem_enabled}\npids\t8\t3\t1\n"
            ),
        )?;
        write(
            &r.join("proc/meminfo"),
            &format!(
                "MemTotal:       {MEM_TOTAL_KB} kB\nMemFree:         1230012 kB\n\
                 MemAvailable:    9876540 kB\nBuffers:          123456 kB\nCached:          7654321 kB\n\
                 SwapCached:            0 kB\nActive:          5000000 kB\nInactive:        3000000 kB\n\
                 SwapTotal:       2097148 kB\nSwapFree:        1048574 kB\nHugePages_Total:       0\n"
            ),
        )?;
        write(&r.join("proc/loadavg"), "0.42 0.35 0.30 2/611 22013\n")?;
        Ok(())
    }

    fn proc_cgroup_text(&self, c: &SynthContainer) -> String {
        let p = if self.opts.cgroupns_relative {
            // As seen from an agent inside a private cgroup namespace one level down.
            let last = c.cgroup_path.rsplit('/').next().unwrap_or("");
            format!("/../{last}")
        } else {
            c.cgroup_path.clone()
        };
        let m = self.opts.memory_accounting;
        match self.opts.layout {
            TreeLayout::V2 => format!("0::{p}\n"),
            TreeLayout::V1Comounted => {
                let mut s = format!("12:pids:{p}\n9:cpuset:{p}\n");
                if m {
                    let _ = writeln!(s, "8:memory:{p}");
                }
                let _ = write!(s, "4:blkio:{p}\n3:cpuacct,cpu:{p}\n1:name=systemd:{p}\n");
                s
            }
            TreeLayout::V1CentOs6 => {
                let mut s = format!("5:blkio:{p}\n");
                if m {
                    let _ = writeln!(s, "4:memory:{p}");
                }
                let _ = write!(s, "3:cpuacct:{p}\n2:cpu:{p}\n1:cpuset:{p}\n");
                s
            }
            TreeLayout::Hybrid => {
                let mut s = format!("9:name=systemd:{p}\n8:pids:{p}\n7:blkio:{p}\n");
                if m {
                    let _ = writeln!(s, "4:memory:{p}");
                }
                let _ = write!(s, "3:cpuset:{p}\n2:cpuacct:{p}\n1:cpu:{p}\n0::{p}\n");
                s
            }
        }
    }

    fn write_container_static(&self, i: usize) -> io::Result<()> {
        let c = &self.containers[i];
        let proc_dir = self.root.join(format!("proc/{}", c.pid));
        write(&proc_dir.join("cgroup"), &self.proc_cgroup_text(c))?;
        write(
            &proc_dir.join("stat"),
            &format!(
                "{} (sh) R 1 {} {} 0 -1 4194560 100 0 0 0 13 7 0 0 20 0 1 0 98765 1327104 200 \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                c.pid, c.pid, c.pid
            ),
        )?;
        write(
            &proc_dir.join("net/tcp"),
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
             0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31426 1 0000000000000000 100 0 0 10 0\n   \
             1: 0200A8C0:0050 0100A8C0:D2F4 01 00000000:00000000 02:000AFD6B 00000000   101        0 49218 2 0000000000000000 20 4 30 10 -1\n",
        )?;
        write(
            &proc_dir.join("net/tcp6"),
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        )?;
        let v2 = self.opts.layout == TreeLayout::V2;
        for ctl in self.controllers() {
            let d = self.cgroup_dir(ctl, &c.cgroup_path);
            std::fs::create_dir_all(&d)?;
            write(&d.join("cgroup.procs"), &format!("{}\n", c.pid))?;
            if v2 {
                write(&d.join("cgroup.threads"), &format!("{}\n", c.pid))?;
                write(
                    &d.join("cpu.max"),
                    if i % 2 == 0 {
                        "max 100000\n"
                    } else {
                        "50000 100000\n"
                    },
                )?;
                write(
                    &d.join("memory.max"),
                    &match c.mem_limit {
                        Some(l) => format!("{l}\n"),
                        None => "max\n".into(),
                    },
                )?;
                write(&d.join("memory.swap.max"), "max\n")?;
                write(&d.join("pids.max"), "max\n")?;
                if !self.opts.memory_accounting {
                    for f in ["memory.max", "memory.swap.max"] {
                        let _ = std::fs::remove_file(d.join(f));
                    }
                }
                break;
            }
            write(&d.join("tasks"), &format!("{}\n", c.pid))?;
            match ctl {
                "cpu" => {
                    let q = if i % 2 == 0 { "-1\n" } else { "50000\n" };
                    write(&d.join("cpu.cfs_quota_us"), q)?;
                    write(&d.join("cpu.cfs_period_us"), "100000\n")?;
                    write(&d.join("cpu.shares"), "1024\n")?;
                }
                "memory" => {
                    let unl = if self.opts.layout == TreeLayout::V1CentOs6 {
                        LIMIT_OLD_UNLIMITED
                    } else {
                        LIMIT_V1_UNLIMITED
                    };
                    let l = c.mem_limit.unwrap_or(unl);
                    write(&d.join("memory.limit_in_bytes"), &format!("{l}\n"))?;
                    if self.opts.swap_accounting {
                        let sl = c.mem_limit.map(|l| l * 2).unwrap_or(unl);
                        write(&d.join("memory.memsw.limit_in_bytes"), &format!("{sl}\n"))?;
                    }
                }
                "pids" => write(&d.join("pids.max"), "max\n")?,
                "blkio" => {
                    write(&d.join("blkio.io_serviced_recursive"), "")?;
                    write(&d.join("blkio.io_service_bytes_recursive"), "")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Rewrites every counter file from the current state.
    fn write_counters(&self) -> io::Result<()> {
        let r = &self.root;
        let cpus = self.opts.cpus as u64;
        // Host: total ticks split user/system/idle; cpu lines per CPU.
        let t = self.host_ticks;
        let mut stat = format!(
            "cpu  {} 0 {} {} 0 0 0 0 0 0\n",
            t * cpus / 10,
            t * cpus / 20,
            t * cpus - t * cpus / 10 - t * cpus / 20
        );
        for n in 0..cpus {
            let _ = writeln!(
                stat,
                "cpu{n} {} 0 {} {} 0 0 0 0 0 0",
                t / 10,
                t / 20,
                t - t / 10 - t / 20
            );
        }
        stat.push_str("intr 0\nctxt 12345\nbtime 1700000000\nprocesses 4242\nprocs_running 3\nprocs_blocked 0\n");
        write(&r.join("proc/stat"), &stat)?;
        let host_rx: u64 = 10_000_000 + (self.elapsed * 1e6) as u64;
        write(&r.join("proc/1/net/dev"), &net_dev(host_rx, host_rx / 2))?;
        for (i, c) in self.containers.iter().enumerate() {
            self.write_container_counters(i, c)?;
        }
        Ok(())
    }

    fn write_container_counters(&self, i: usize, c: &SynthContainer) -> io::Result<()> {
        let proc_dir = self.root.join(format!("proc/{}", c.pid));
        write(&proc_dir.join("net/dev"), &net_dev(c.rx_bytes, c.tx_bytes))?;
        let user_ticks = c.cpu_ns / 10_000_000 * 2 / 3;
        let sys_ticks = c.cpu_ns / 10_000_000 / 3;
        let swap = if i % 2 == 0 { 1 << 20 } else { 0 };
        let rss = c.mem_usage - c.inactive_file - (5 << 20);
        let cache = c.mem_usage - rss;
        if self.opts.layout == TreeLayout::V2 {
            let d = self.cgroup_dir("", &c.cgroup_path);
            write(
                &d.join("cpu.stat"),
                &format!(
                    "usage_usec {}\nuser_usec {}\nsystem_usec {}\nnr_periods 10\nnr_throttled 2\nthrottled_usec 1500\nnr_bursts 0\nburst_usec 0\n",
                    c.cpu_ns / 1000,
                    user_ticks * 10_000,
                    sys_ticks * 10_000
                ),
            )?;
            if self.opts.memory_accounting {
                write(&d.join("memory.current"), &format!("{}\n", c.mem_usage))?;
                write(&d.join("memory.peak"), &format!("{}\n", c.mem_usage + 4096))?;
                write(&d.join("memory.swap.current"), &format!("{swap}\n"))?;
                write(
                    &d.join("memory.stat"),
                    &format!(
                        "anon {rss}\nfile {cache}\nkernel 983040\nkernel_stack 98304\nsock 0\nshmem 0\n\
                         file_mapped 2506752\nfile_dirty 0\nanon_thp 0\ninactive_anon 0\nactive_anon {rss}\n\
                         inactive_file {}\nactive_file {}\nunevictable 0\nslab 663552\npgfault 13113\npgmajfault 41\n",
                        c.inactive_file,
                        cache - c.inactive_file
                    ),
                )?;
                write(
                    &d.join("memory.events"),
                    "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
                )?;
            }
            write(
                &d.join("io.stat"),
                &format!(
                    "8:0 rbytes={} wbytes={} rios={} wios={} dbytes=0 dios=0\n",
                    c.read_bytes,
                    c.write_bytes,
                    c.read_bytes / 4096,
                    c.write_bytes / 4096
                ),
            )?;
            write(&d.join("pids.current"), "1\n")?;
            return Ok(());
        }
        let d = self.cgroup_dir("cpuacct", &c.cgroup_path);
        write(&d.join("cpuacct.usage"), &format!("{}\n", c.cpu_ns))?;
        let cpus = self.opts.cpus as u64;
        let mut percpu = String::new();
        for n in 0..cpus {
            let _ = write!(percpu, "{} ", if n == 0 { c.cpu_ns } else { 0 });
        }
        percpu.push('\n');
        write(&d.join("cpuacct.usage_percpu"), &percpu)?;
        write(
            &d.join("cpuacct.stat"),
            &format!("user {user_ticks}\nsystem {sys_ticks}\n"),
        )?;
        let d = self.cgroup_dir("cpu", &c.cgroup_path);
        if self.opts.layout != TreeLayout::V1CentOs6 {
            write(
                &d.join("cpu.stat"),
                "nr_periods 10\nnr_throttled 2\nthrottled_time 1500000\n",
            )?;
        }
        if self.opts.memory_accounting {
            let d = self.cgroup_dir("memory", &c.cgroup_path);
            write(
                &d.join("memory.usage_in_bytes"),
                &format!("{}\n", c.mem_usage),
            )?;
            write(
                &d.join("memory.max_usage_in_bytes"),
                &format!("{}\n", c.mem_usage + 4096),
            )?;
            write(&d.join("memory.failcnt"), "0\n")?;
            let old = self.opts.layout == TreeLayout::V1CentOs6;
            write(
                &d.join("memory.oom_control"),
                if old {
                    "oom_kill_disable 0\nunder_oom 0\n"
                } else {
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
                },
            )?;
            let swap_line = if self.opts.swap_accounting {
                format!("swap {swap}\n")
            } else {
                String::new()
            };
            let total_swap = if self.opts.swap_accounting {
                format!("total_swap {swap}\n")
            } else {
                String::new()
            };
            write(
                &d.join("memory.stat"),
                &format!(
                    "cache {cache}\nrss {rss}\nrss_huge 0\nshmem 0\nmapped_file 2506752\n{swap_line}pgpgin 10254\n\
                     pgpgout 4124\ninactive_anon 0\nactive_anon {rss}\ninactive_file {}\nactive_file {}\n\
                     unevictable 0\nhierarchical_memory_limit 536870912\ntotal_cache {cache}\ntotal_rss {rss}\n\
                     total_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 2506752\n{total_swap}total_pgpgin 10254\n\
                     total_pgpgout 4124\ntotal_inactive_anon 0\ntotal_active_anon {rss}\ntotal_inactive_file {}\n\
                     total_active_file {}\ntotal_unevictable 0\n",
                    c.inactive_file,
                    cache - c.inactive_file,
                    c.inactive_file,
                    cache - c.inactive_file
                ),
            )?;
            if self.opts.swap_accounting {
                write(
                    &d.join("memory.memsw.usage_in_bytes"),
                    &format!("{}\n", c.mem_usage + swap),
                )?;
            }
        }
        let d = self.cgroup_dir("blkio", &c.cgroup_path);
        let (rb, wb) = (c.read_bytes, c.write_bytes);
        write(
            &d.join("blkio.throttle.io_service_bytes"),
            &format!(
                "8:0 Read {rb}\n8:0 Write {wb}\n8:0 Sync {wb}\n8:0 Async {rb}\n8:0 Discard 0\n8:0 Total {}\nTotal {}\n",
                rb + wb,
                rb + wb
            ),
        )?;
        let (rc, wc) = (rb / 4096, wb / 4096);
        write(
            &d.join("blkio.throttle.io_serviced"),
            &format!(
                "8:0 Read {rc}\n8:0 Write {wc}\n8:0 Sync {wc}\n8:0 Async {rc}\n8:0 Discard 0\n8:0 Total {}\nTotal {}\n",
                rc + wc,
                rc + wc
            ),
        )?;
        if self.opts.layout != TreeLayout::V1CentOs6 {
            let d = self.cgroup_dir("pids", &c.cgroup_path);
            write(&d.join("pids.current"), "1\n")?;
        }
        Ok(())
    }

    /// Moves every counter forward by `secs` of simulated time and rewrites the files.
    pub fn advance(&mut self, secs: f64) -> io::Result<()> {
        self.elapsed += secs;
        self.host_ticks += (secs * 100.0) as u64;
        for c in &mut self.containers {
            c.cpu_ns += (secs * c.cpu_cores * 1e9) as u64;
            c.rx_bytes += (secs * c.net_rate as f64) as u64;
            c.tx_bytes += (secs * c.net_rate as f64 / 2.0) as u64;
            c.read_bytes += (secs * c.blk_rate as f64) as u64;
            c.write_bytes += (secs * c.blk_rate as f64 * 2.0) as u64;
        }
        self.write_counters()
    }

    /// Simulates container `i` exiting: its cgroup directories and /proc entry vanish.
    /// Files are emptied first: a collector holding them open then reads
    /// nothing, the closest a regular file gets to the kernel's `ENODEV`.
    pub fn remove_container(&self, i: usize) -> io::Result<()> {
        let c = &self.containers[i];
        for ctl in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
            let dir = self.cgroup_dir(ctl, &c.cgroup_path);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let _ = std::fs::write(e.path(), b"");
                }
            }
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(self.root.join(format!("proc/{}", c.pid)));
        Ok(())
    }

    /// Simulates a restart of container `i`: counters start again from a low value.
    pub fn reset_counters(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.containers[i];
        c.cpu_ns = 1_000_000;
        c.rx_bytes = 100;
        c.tx_bytes = 100;
        c.read_bytes = 0;
        c.write_bytes = 0;
        let c = c.clone();
        self.write_container_counters(i, &c)
    }
}

impl Drop for SyntheticHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn net_dev(rx: u64, tx: u64) -> String {
    format!(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
         lo:    4242      42    0    0    0     0          0         0     4242      42    0    0    0     0       0          0\n  \
         eth0: {rx:>8} {:>7} {:>4} {:>4}    0     0          0         0 {tx:>8} {:>7} {:>4} {:>4}    0     0       0          0\n",
        rx / 100,
        1,
        2,
        tx / 100,
        3,
        4
    )
}

// ---------------------------------------------------------------------------
// A minimal fake Docker daemon

/// A minimal Docker 20.10 daemon (API 1.41) on a unix socket in a temp dir,
/// serving a fixed set of running containers with the reply shapes of a real
/// 20.10.24 (docs/compat.md §1): `GET /_ping`, `/version`, `/info`,
/// `/containers/json`, `/containers/<id>/json` (versioned or not) and
/// `/events` (the head, then an open stream with no events). Keep-alive;
/// bodies over 2 KiB are chunked like Go's `net/http`. Anything else gets a
/// 404. One thread accepts, one serves each connection; all stop on drop.
pub struct FakeDaemon {
    dir: PathBuf,
    socket: PathBuf,
    shared: std::sync::Arc<DaemonShared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

struct DaemonShared {
    containers: Vec<ContainerInfo>,
    stop: std::sync::atomic::AtomicBool,
    requests: AtomicUsize,
    lists: AtomicUsize,
    workers: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// How long a connection thread blocks in `read` before looking at the stop flag.
const FAKE_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// A request head larger than this is refused (400) and the connection closed.
const FAKE_MAX_HEAD: usize = 64 * 1024;

impl FakeDaemon {
    /// Listens at `<temp dir>/outlyer-fakedocker-<pid>-<n>/docker.sock`.
    pub fn start(containers: Vec<ContainerInfo>) -> io::Result<FakeDaemon> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("outlyer-fakedocker-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket)?;
        let shared = std::sync::Arc::new(DaemonShared {
            containers,
            stop: std::sync::atomic::AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            workers: std::sync::Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("fake-docker".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s2 = s.clone();
                    let worker = std::thread::Builder::new()
                        .name("fake-docker-conn".into())
                        .spawn(move || serve_fake_connection(conn, &s2));
                    if let (Ok(w), Ok(mut ws)) = (worker, s.workers.lock()) {
                        ws.push(w);
                    }
                }
            })?;
        Ok(FakeDaemon {
            dir,
            socket,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The socket to pass as `--docker-socket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Requests answered so far (all connections, all paths).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// `GET /containers/json` requests answered so far.
    pub fn lists(&self) -> usize {
        self.shared.lists.load(Ordering::Relaxed)
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor out of `accept`; if that fails it is left detached.
        if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            if let Some(a) = self.acceptor.take() {
                let _ = a.join();
            }
        }
        let workers = match self.shared.workers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => Vec::new(),
        };
        for w in workers {
            let _ = w.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `conn` into `buf`; `Ok(false)` on EOF or stop.
fn fake_read(
    conn: &mut std::os::unix::net::UnixStream,
    buf: &mut Vec<u8>,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<bool> {
    use std::io::Read as _;
    let mut chunk = [0u8; 4096];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn serve_fake_connection(mut conn: std::os::unix::net::UnixStream, shared: &DaemonShared) {
    use std::io::Write as _;
    let _ = conn.set_read_timeout(Some(FAKE_POLL));
    let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(10)));
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > FAKE_MAX_HEAD {
                let _ = conn.write_all(&fake_reply(
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    b"400 Bad Request",
                    true,
                ));
                return;
            }
            match fake_read(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => continue,
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let (method, target, proto) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let mut body_len = 0usize;
        let mut close = proto != "HTTP/1.1";
        for h in lines {
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                body_len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        // A request body (never sent by the agent) is read and dropped.
        while buf.len() < body_len {
            match fake_read(&mut conn, &mut buf, &shared.stop) {
                Ok(true) => {}
                _ => return,
            }
        }
        buf.drain(..body_len);
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let path = target.split('?').next().unwrap_or("");
        // `/v1.41/x` and `/x` are the same route (docs/compat.md §1.2).
        let route = match path.strip_prefix("/v").and_then(|p| p.split_once('/')) {
            Some((ver, rest))
                if !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                format!("/{rest}")
            }
            _ => path.to_string(),
        };
        if method == "GET" && route == "/events" {
            let mut head = fake_head("200 OK", "application/json");
            head.push_str(if close {
                "Connection: close\r\n\r\n"
            } else {
                "Transfer-Encoding: chunked\r\n\r\n"
            });
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            // No events: hold the stream until the client leaves or we stop.
            let mut sink = Vec::new();
            while let Ok(true) = fake_read(&mut conn, &mut sink, &shared.stop) {
                sink.clear();
            }
            return;
        }
        let (status, ctype, body) = fake_route(method, &route, &shared.containers);
        if method == "GET" && route == "/containers/json" {
            shared.lists.fetch_add(1, Ordering::Relaxed);
        }
        if conn
            .write_all(&fake_reply(status, ctype, &body, close))
            .is_err()
            || close
        {
            return;
        }
    }
}

fn fake_route(
    method: &str,
    route: &str,
    containers: &[ContainerInfo],
) -> (&'static str, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    let not_found = |what: String| {
        (
            "404 Not Found",
            JSON,
            format!("{{\"message\":{}}}\n", json_str(&what)).into_bytes(),
        )
    };
    if method != "GET" {
        return not_found("page not found".into());
    }
    match route {
        "/_ping" => ("200 OK", "text/plain; charset=utf-8", b"OK".to_vec()),
        "/version" => ("200 OK", JSON, FAKE_VERSION.as_bytes().to_vec()),
        "/info" => ("200 OK", JSON, fake_info(containers).into_bytes()),
        "/containers/json" => {
            let mut body = String::from("[");
            for (i, c) in containers.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                fake_list_entry(&mut body, c);
            }
            body.push_str("]\n");
            ("200 OK", JSON, body.into_bytes())
        }
        _ => {
            let Some(key) = route
                .strip_prefix("/containers/")
                .and_then(|r| r.strip_suffix("/json"))
                .filter(|k| !k.is_empty() && !k.contains('/'))
            else {
                return not_found("page not found".into());
            };
            if let Some(c) = containers.iter().find(|c| c.id == key || c.name == key) {
                return ("200 OK", JSON, fake_inspect(c).into_bytes());
            }
            let mut by_prefix = containers.iter().filter(|c| c.id.starts_with(key));
            match (by_prefix.next(), by_prefix.next()) {
                (Some(c), None) => ("200 OK", JSON, fake_inspect(c).into_bytes()),
                (Some(_), Some(_)) => (
                    "400 Bad Request",
                    JSON,
                    format!("{{\"message\":\"multiple IDs found with provided prefix: {key}\"}}\n")
                        .into_bytes(),
                ),
                (None, _) => not_found(format!("No such container: {key}")),
            }
        }
    }
}

/// Headers every 20.10 reply carries, without the framing and the blank line.
fn fake_head(status: &str, content_type: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = crate::time::civil_from_days(days);
    let rem = secs % 86_400;
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: {content_type}\r\n\
         Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24 (linux)\r\n\
         Date: {}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT\r\n",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1) % 12],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A whole reply framed like Go's `net/http`: `Content-Length` up to 2048
/// bytes, one chunk plus the last-chunk above (or close-delimited when the
/// client asked for `close`, as for HTTP/1.0).
fn fake_reply(status: &str, content_type: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut head = fake_head(status, content_type);
    if close {
        head.push_str("Connection: close\r\n");
    }
    let chunked = body.len() > 2048 && !close;
    if chunked {
        head.push_str(&format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        ));
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    if chunked {
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    out
}

/// Unix seconds → Go's RFC3339Nano (`2023-11-14T22:13:20.5Z`); 0 → Docker's never-set time.
fn rfc3339_nano(t: f64) -> String {
    if t <= 0.0 || !t.is_finite() {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = t.floor() as u64;
    let nanos = ((t - t.floor()) * 1e9).round().min(999_999_999.0) as u32;
    let (y, m, d) = crate::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::upload::wire::push_json_str(&mut out, s);
    out
}

fn json_labels(labels: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(k), json_str(v));
    }
    out.push('}');
    out
}

/// A stable 64-hex string derived from a container id (image and network ids).
fn fake_hex(id: &str, salt: u8) -> String {
    id.bytes()
        .rev()
        .map(|b| {
            let v = (b as char).to_digit(16).unwrap_or(0) as u8 ^ (salt & 15);
            char::from_digit(u32::from(v), 16).unwrap_or('0')
        })
        .chain(std::iter::repeat('0'))
        .take(64)
        .collect()
}

fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `NetworkSettings.Networks` of 20.10: one endpoint per address; the
/// network is named after `NetworkMode` (`default` is `bridge`); `host`,
/// `none` and named networks without an address get one endpoint with an
/// empty `IPAddress`; `container:<id>` has none.
fn fake_networks(c: &ContainerInfo, out: &mut String) {
    out.push('{');
    if !c.network_mode.starts_with("container:") {
        let net = if c.network_mode == "default" || c.network_mode.is_empty() {
            "bridge"
        } else {
            c.network_mode.as_str()
        };
        let empty = [String::new()];
        let ips: &[String] = if c.ips.is_empty() { &empty } else { &c.ips };
        for (k, ip) in ips.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let name = if k == 0 {
                net.to_string()
            } else {
                format!("{net}-{k}")
            };
            let has = !ip.is_empty();
            let _ = write!(
                out,
                concat!(
                    r#"{}:{{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"{}","EndpointID":"{}","#,
                    r#""Gateway":"{}","IPAddress":{},"IPPrefixLen":{},"IPv6Gateway":"","GlobalIPv6Address":"","#,
                    r#""GlobalIPv6PrefixLen":0,"MacAddress":"{}","DriverOpts":null}}"#
                ),
                json_str(&name),
                fake_hex(&format!("{:016x}", fnv64(&name)), 3),
                fake_hex(&c.id, k as u8 + 5),
                if has { "172.17.0.1" } else { "" },
                json_str(ip),
                if has { 16 } else { 0 },
                if has { "02:42:ac:11:00:02" } else { "" },
            );
        }
    }
    out.push('}');
}

fn fake_list_entry(out: &mut String, c: &ContainerInfo) {
    let _ = write!(
        out,
        concat!(
            r#"{{"Id":"{id}","Names":[{name}],"Image":{image},"ImageID":"sha256:{img}","Command":"sleep 3600","#,
            r#""Created":{created},"Ports":[],"Labels":{labels},"State":"{state}","Status":"Up 5 minutes{paused}","#,
            r#""HostConfig":{{"NetworkMode":{mode}}},"NetworkSettings":{{"Networks":"#
        ),
        id = c.id,
        name = json_str(&format!("/{}", c.name)),
        image = json_str(&c.image),
        img = fake_hex(&c.id, 1),
        created = c.started_at.max(1.0) as u64 - 1,
        labels = json_labels(&c.labels),
        state = if c.paused { "paused" } else { "running" },
        paused = if c.paused { " (Paused)" } else { "" },
        mode = json_str(&c.network_mode),
    );
    fake_networks(c, out);
    out.push_str(r#"},"Mounts":[]}"#);
}

fn fake_inspect(c: &ContainerInfo) -> String {
    let mut env = vec![json_str(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )];
    for (var, value) in ["ENV", "APP_NAME"].iter().zip(&c.env_tags) {
        env.push(json_str(&format!("{var}={value}")));
    }
    let started = rfc3339_nano(c.started_at);
    let created = rfc3339_nano((c.started_at - 0.5).max(0.0));
    let overlay = fake_hex(&c.id, 7);
    let mut out = String::with_capacity(5000);
    let _ = write!(
        out,
        concat!(
            r#"{{"Id":"{id}","Created":"{created}","Path":"sleep","Args":["3600"],"#,
            r#""State":{{"Status":"{status}","Running":true,"Paused":{paused},"Restarting":false,"OOMKilled":false,"#,
            r#""Dead":false,"Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"{started}","FinishedAt":"0001-01-01T00:00:00Z"}},"#,
            r#""Image":"sha256:{img}","ResolvConfPath":"/var/lib/docker/containers/{id}/resolv.conf","#,
            r#""HostnamePath":"/var/lib/docker/containers/{id}/hostname","#,
            r#""HostsPath":"/var/lib/docker/containers/{id}/hosts","#,
            r#""LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":{name},"RestartCount":0,"#,
            r#""Driver":"overlay2","Platform":"linux","MountLabel":"","ProcessLabel":"","AppArmorProfile":"","#,
            r#""ExecIDs":null,"HostConfig":{{"Binds":null,"ContainerIDFile":"","LogConfig":{{"Type":"json-file","Config":{{}}}},"#,
            r#""NetworkMode":{mode},"PortBindings":{{}},"RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"#,
            r#""AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"#,
            r#""CgroupnsMode":"host","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"#,
            r#""IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"#,
            r#""PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","#,
            r#""ShmSize":67108864,"Runtime":"runc","ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"#,
            r#""NanoCpus":0,"CgroupParent":{parent},"BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"#,
            r#""BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"#,
            r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"#,
            r#""DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"#,
            r#""MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"#,
            r#""Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"#,
            r#""MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","#,
            r#""/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"],"#,
            r#""ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}},"#,
            r#""GraphDriver":{{"Data":{{"LowerDir":"/var/lib/docker/overlay2/{ov}-init/diff","#,
            r#""MergedDir":"/var/lib/docker/overlay2/{ov}/merged","UpperDir":"/var/lib/docker/overlay2/{ov}/diff","#,
            r#""WorkDir":"/var/lib/docker/overlay2/{ov}/work"}},"Name":"overlay2"}},"Mounts":[],"#,
            r#""Config":{{"Hostname":"{short}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"#,
            r#""AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":[{env}],"#,
            r#""Cmd":["sleep","3600"],"Image":{image},"Volumes":null,"WorkingDir":"","Entrypoint":null,"#,
            r#""OnBuild":null,"Labels":{labels}}},"#,
            r#""NetworkSettings":{{"Bridge":"","SandboxID":"{sandbox}","HairpinMode":false,"LinkLocalIPv6Address":"","#,
            r#""LinkLocalIPv6PrefixLen":0,"Ports":{{}},"SandboxKey":"/var/run/docker/netns/{sandbox_short}","#,
            r#""SecondaryIPAddresses":null,"SecondaryIPv6Addresses":null,"EndpointID":"","Gateway":"","#,
            r#""GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","#,
            r#""MacAddress":"","Networks":"#
        ),
        id = c.id,
        created = created,
        status = if c.paused { "paused" } else { "running" },
        paused = c.paused,
        pid = c.pid,
        started = started,
        img = fake_hex(&c.id, 1),
        name = json_str(&format!("/{}", c.name)),
        mode = json_str(&c.network_mode),
        parent = json_str(&c.cgroup_parent),
        ov = overlay,
        short = c.short_id(),
        env = env.join(","),
        image = json_str(&c.image),
        labels = json_labels(&c.labels),
        sandbox = fake_hex(&c.id, 9),
        sandbox_short = &fake_hex(&c.id, 9)[..12],
    );
    fake_networks(c, &mut out);
    out.push_str("}}\n");
    out
}

fn fake_info(containers: &[ContainerInfo]) -> String {
    let paused = containers.iter().filter(|c| c.paused).count();
    format!(
        concat!(
            r#"{{"ID":"SYNT:HETI:CHOS:TFAK:EDAE:MONX:2010:API1:41XX:XXXX:XXXX:XXXX","Containers":{n},"#,
            r#""ContainersRunning":{running},"ContainersPaused":{paused},"ContainersStopped":0,"Images":1,"#,
            r#""Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"],"#,
            r#"["Native Overlay Diff","true"],["userxattr","false"]],"Plugins":{{"Volume":["local"],"#,
            r#""Network":["bridge","host","ipvlan","macvlan","null","overlay"],"Authorization":null,"#,
            r#""Log":["awslogs","fluentd","gcplogs","gelf","journald","json-file","local","logentries","splunk","syslog"]}},"#,
            r#""MemoryLimit":true,"SwapLimit":true,"KernelMemory":true,"KernelMemoryTCP":true,"CpuCfsPeriod":true,"#,
            r#""CpuCfsQuota":true,"CPUShares":true,"CPUSet":true,"PidsLimit":true,"IPv4Forwarding":true,"#,
            r#""BridgeNfIptables":true,"BridgeNfIp6tables":true,"Debug":false,"NFd":42,"OomKillDisable":true,"#,
            r#""NGoroutines":51,"SystemTime":"2026-11-24T22:51:19.123456789Z","LoggingDriver":"json-file","#,
            r#""CgroupDriver":"cgroupfs","CgroupVersion":"1","NEventsListener":1,"KernelVersion":"6.1.0","#,
            r#""OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSVersion":"12","OSType":"linux","#,
            r#""Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":null,"#,
            r#""NCPU":4,"MemTotal":16709636096,"GenericResources":null,"DockerRootDir":"/var/lib/docker","#,
            r#""HttpProxy":"","HttpsProxy":"","NoProxy":"","Name":"synthetic-host","Labels":[],"#,
            r#""ExperimentalBuild":false,"ServerVersion":"20.10.24","Runtimes":{{"runc":{{"path":"runc"}}}},"#,
            r#""DefaultRuntime":"runc","LiveRestoreEnabled":false,"Isolation":"","InitBinary":"docker-init","#,
            r#""SecurityOptions":["name=seccomp,profile=default"],"Warnings":null}}"#,
            "\n"
        ),
        n = containers.len(),
        running = containers.len() - paused,
        paused = paused,
    )
}

const FAKE_VERSION: &str = concat!(
    r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24","Details":{"ApiVersion":"1.41","#,
    r#""Arch":"amd64","BuildTime":"2023-04-04T17:59:27.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","#,
    r#""GoVersion":"go1.19.8","KernelVersion":"6.1.0","MinAPIVersion":"1.12","Os":"linux"}},"#,
    r#"{"Name":"containerd","Version":"1.6.20","Details":{"GitCommit":"2806fc1"}},"#,
    r#"{"Name":"runc","Version":"1.1.5","Details":{"GitCommit":"f19387a"}},"#,
    r#"{"Name":"docker-init","Version":"0.19.0","Details":{"GitCommit":"de40ad0"}}],"#,
    r#""Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","#,
    r#""Os":"linux","Arch":"amd64","KernelVersion":"6.1.0","BuildTime":"2023-04-04T17:59:27.000000000+00:00"}"#,
    "\n"
);

/// The host identity the upload tests use.
pub fn sample_host() -> crate::upload::HostIdentity {
    crate::upload::HostIdentity {
        finger: "11111111-2222-3333-4444-555555555555".into(),
        name: "node1".into(),
        mac: "mac-1".into(),
        tags: vec!["docker".into()],
        hostname: "docker-host".into(),
    }
}

/// Container `n` of the upload tests: id `nn…` (64 hex), name `c<n>`, one address.
pub fn sample_container(n: u8) -> ContainerInfo {
    let id = format!("{:02x}", n).repeat(32);
    ContainerInfo {
        fingerprint: crate::uuid::container_fingerprint(&id),
        name: format!("c{n}"),
        image: "img".into(),
        ips: vec![format!("172.17.0.{n}")],
        id,
        ..ContainerInfo::default()
    }
}

#[cfg(test)]
mod fake_daemon_tests {
    use super::*;
    use crate::docker::api::{parse_container_list, parse_info, parse_inspect};
    use crate::docker::version::parse_version_body;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn synthetic(n: usize) -> Vec<ContainerInfo> {
        let host = SyntheticHost::create(TreeOptions::new(TreeLayout::V1Comounted, n)).unwrap();
        (0..n).map(|i| host.container_info(i)).collect()
    }

    fn odd_container() -> ContainerInfo {
        ContainerInfo {
            id: "ab".repeat(32),
            name: "odd \"one\"\\".into(),
            image: "registry.example:5000/team/app:1.2".into(),
            labels: vec![
                ("a".into(), "line\nbreak\ttab".into()),
                ("b".into(), String::new()),
            ],
            env_tags: vec!["prod".into(), "shop".into()],
            pid: 4242,
            network_mode: "shop_default".into(),
            ips: vec!["10.0.0.2".into(), "10.0.1.2".into()],
            started_at: 1_795_561_048.25,
            cgroup_parent: "/custom-parent".into(),
            fingerprint: String::new(),
            paused: true,
        }
    }

    /// Reads one reply (Content-Length or chunked) from a kept-alive connection.
    fn read_reply(s: &mut UnixStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut b = [0u8; 8192];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = s.read(&mut b).unwrap();
            assert!(n > 0, "EOF before a head");
            buf.extend_from_slice(&b[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        let mut rest = buf[end + 4..].to_vec();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                })
                .map(|(_, v)| v.trim().to_string())
        };
        let mut fill = |rest: &mut Vec<u8>, want: usize| {
            while rest.len() < want {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "EOF inside a body");
                rest.extend_from_slice(&b[..n]);
            }
        };
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().unwrap();
            fill(&mut rest, len);
            assert_eq!(rest.len(), len, "bytes after a Content-Length body");
            return (head, rest);
        }
        assert_eq!(
            header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{head}"
        );
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                let want = rest.len() + 1;
                fill(&mut rest, want);
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            fill(&mut rest, line_end + 2 + size + 2);
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            assert_eq!(&rest[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            rest.drain(..line_end + 4 + size);
            if size == 0 {
                assert!(rest.is_empty(), "bytes after the last chunk");
                return (head, body);
            }
        }
    }

    fn get(s: &mut UnixStream, path: &str) -> (String, Vec<u8>) {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes())
            .unwrap();
        read_reply(s)
    }

    #[test]
    fn inspect_and_list_bodies_parse_back_to_the_container_info() {
        let mut all = synthetic(3);
        all.push(odd_container());
        let mut host_mode = synthetic(1).remove(0);
        host_mode.network_mode = "host".into();
        all.push(host_mode);
        let mut shared_net = odd_container();
        shared_net.id = "cd".repeat(32);
        shared_net.network_mode = format!("container:{}", "ab".repeat(32));
        shared_net.ips.clear();
        shared_net.env_tags = vec!["staging".into()];
        all.push(shared_net);
        for c in &all {
            let got = parse_inspect(fake_inspect(c).as_bytes()).unwrap();
            assert!(got.running);
            assert_eq!(got.hostname, c.short_id());
            let want = ContainerInfo {
                fingerprint: got.info.fingerprint.clone(),
                ..c.clone()
            };
            assert_eq!(got.info, want);
        }
        let (_, _, body) = fake_route("GET", "/containers/json", &all);
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), all.len());
        for (l, c) in listed.iter().zip(&all) {
            assert_eq!(l.id, c.id);
            assert_eq!(l.name(), Some(c.name.as_str()));
            assert_eq!(l.labels, c.labels);
            let state = if c.paused { "paused" } else { "running" };
            assert_eq!(l.state.as_deref(), Some(state));
        }
        let (_, _, body) = fake_route("GET", "/info", &all);
        let info = parse_info(&body).unwrap();
        assert_eq!(info.name.as_deref(), Some("synthetic-host"));
        assert!(info.id.is_some_and(|id| !id.is_empty()));
    }

    #[test]
    fn serves_a_kept_alive_connection_and_an_open_events_stream() {
        let containers = synthetic(40);
        let daemon = FakeDaemon::start(containers.clone()).unwrap();
        let mut s = UnixStream::connect(daemon.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        let (head, body) = get(&mut s, "/_ping");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, b"OK");
        let (head, body) = get(&mut s, "/version");
        assert!(head.contains("Api-Version: 1.41"), "{head}");
        assert!(head.contains("Content-Length:"), "{head}");
        let v = parse_version_body(&body).unwrap();
        assert_eq!(v.negotiated().to_string(), "1.41");
        // The whole list is over 2 KiB: chunked, like Go's net/http.
        let (head, body) = get(&mut s, "/v1.41/containers/json?all=0");
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        let listed = parse_container_list(&body).unwrap();
        assert_eq!(listed.len(), 40);
        assert_eq!(daemon.lists(), 1);
        // Inspect by full id, by short id, by name.
        let c = &containers[17];
        for key in [c.id.as_str(), c.name.as_str()] {
            let (head, body) = get(&mut s, &format!("/v1.41/containers/{key}/json"));
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            let got = parse_inspect(&body).unwrap();
            assert_eq!(got.info.id, c.id);
            assert_eq!(got.info.pid, c.pid);
        }
        // Synthetic ids share their first 12 digits: a short id is ambiguous.
        let (head, _) = get(&mut s, &format!("/v1.41/containers/{}/json", c.short_id()));
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        let (head, body) = get(&mut s, &format!("/containers/{}/json", &c.id[..20]));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(parse_inspect(&body).unwrap().info.id, c.id);
        let (head, body) = get(&mut s, "/v1.41/containers/nope/json");
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert_eq!(body, b"{\"message\":\"No such container: nope\"}\n");
        for odd in [
            "/v1.41/containers//json",
            "/v1.41/nothing",
            "/containers/a/b/json",
            "/",
            "*",
        ] {
            let (head, _) = get(&mut s, odd);
            assert!(
                head.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{odd}: {head}"
            );
        }
        s.write_all(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        assert!(read_reply(&mut s).0.starts_with("HTTP/1.1 404"));
        // Still the same connection: it answers after all of the above.
        assert_eq!(get(&mut s, "/_ping").1, b"OK");
        assert_eq!(daemon.requests(), 15);

        let mut ev = UnixStream::connect(daemon.socket()).unwrap();
        ev.write_all(b"GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n")
            .unwrap();
        ev.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = ev.read(&mut b).unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..n]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Transfer-Encoding: chunked")
        );
        assert!(
            head.ends_with("\r\n\r\n"),
            "nothing after the head: {head:?}"
        );
        ev.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let e = ev.read(&mut b).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );

        // A garbage head, then an oversized one: answered or closed, never a crash.
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        g.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        assert!(read_reply(&mut g).0.starts_with("HTTP/1.1 404"));
        let mut g = UnixStream::connect(daemon.socket()).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = g.write_all(&vec![b'x'; FAKE_MAX_HEAD + 10]);
        let mut rest = Vec::new();
        let _ = g.read_to_end(&mut rest);
        assert!(
            rest.starts_with(b"HTTP/1.1 400"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        );

        let socket = daemon.socket().to_path_buf();
        let t = std::time::Instant::now();
        drop(daemon);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "stopping took {:?}",
            t.elapsed()
        );
        assert!(!socket.exists());
        // The events stream ends when the daemon stops.
        ev.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(ev.read(&mut b).unwrap(), 0);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_nano(0.0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(1_795_561_048.25), "2026-11-24T22:57:28.25Z");
        assert_eq!(crate::time::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::time::civil_from_days(19_782), (2024, 2, 29));
    }
}
