//! Synthetic host trees (a rootfs with `/proc` and cgroup files) for tests and benches.
//!
//! [`SyntheticHost::create`] writes, under a fresh directory, what the agent
//! reads on a real host: `proc/1/mountinfo`, `proc/cgroups`, `proc/stat`,
//! `proc/meminfo`, `proc/loadavg`, `proc/1/net/dev`, and per container
//! `proc/<pid>/{cgroup,stat,net/dev,net/tcp,net/tcp6}` plus its cgroup files
//! in the chosen [`TreeLayout`]. [`SyntheticHost::advance`] moves every
//! counter forward by a number of seconds, rewriting files in place (same
//! inode), so a collector holding the fds open sees new values.

use outlyer_agent::registry::ContainerInfo;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

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
        let n = crate::next_seq();
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
            ..Default::default()
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
