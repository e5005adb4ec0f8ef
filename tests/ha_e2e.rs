//! End to end on the local target: the shipped `prod` environment, sized
//! for CI (2 lb, 2 ui, 1 backend, 3 db; 1 GiB and one vCPU each: eight
//! guests share the host's two cores under TCG, and one with two vCPUs
//! booting took both from the lb and ui VMs serving beside it, whose health
//! checks and answers then timed out; no services VM: the
//! redundancy under test is the lb's VIP, the ui behind it and Galera's
//! quorum; the backends are not rolled here) deployed from its
//! channel. A client joins prod's segment from the host (a network
//! namespace whose tap is plugged into the segment's switch, as 10.98.0.2)
//! and reaches the lb VMs' virtual address as a client of the public name
//! would, over real ARP (a moved VIP is found by its gratuitous ARP):
//!
//! - after the first deploy, HTTPS through the VIP serves the ui and the
//!   Galera cluster has 3 nodes Synced;
//! - while `oxbake deploy prod` rolls a new version of ui (2
//!   replacements behind the lbs, one VM at a time), a stream of HTTPS
//!   requests goes through the VIP and a stream of writes goes through a
//!   backend's configdb HAProxy (the path OX uses): no request fails, no
//!   acknowledged row is lost;
//! - killing the QEMU of the lb that holds the VIP: the other lb answers on
//!   it within seconds; killing a db VM's QEMU: writes go on; the next
//!   deploy starts both again and the cluster has 3 nodes again;
//! - lowering db from 3 to 1 in one step is refused by the plan (quorum).
//!
//! Along the way it proves what a shared segment must do: the switch never
//! holds an old VM beside its replacement (stop-first), each replacement's
//! host key takes its slot's line in the environment's known_hosts, a VM
//! found stopped is started again by the next deploy, and `destroy` takes
//! the segment along. The peers' firewalls open their ports to the peers'
//! own addresses only, so VRRP, Galera and the configdb path working prove
//! that every VM is seen at its own address.
//!
//! The figures (requests, writes, the VIP's failover) go to figures.txt.
//! About 18 minutes of guests under TCG on CI's machine; it shares the
//! fixture's images and bakes backend, db and lb where no other test did.
//! Rolling db too (3 more replacements, 150-200 s each: boot and SST)
//! took CI past its time; db nodes join by SST (the SST password below) in
//! the first deploy, and a killed node rejoins and catches up below.
#![cfg(feature = "e2e")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oxbake::registry::Registry;

use crate::support::e2e::{
    baked, current, env_ssh, env_ssh_command, record_again, self_signed, ssh_private_key, tls_key,
    vm_lock, vm_names,
};
use crate::support::figures::figure;
use crate::support::output::assert_success;
use crate::support::project::{Run, TestProject, copy_tree};

const ROLES: [&str; 4] = ["db", "backend", "ui", "lb"];
const VIP: &str = "10.98.0.4";
/// Every slot of the deployed environment and its address.
const SLOTS: [(&str, &str); 8] = [
    ("prod-lb-1", "10.98.0.5"),
    ("prod-lb-2", "10.98.0.6"),
    ("prod-ui-1", "10.98.0.21"),
    ("prod-ui-2", "10.98.0.22"),
    ("prod-backend-1", "10.98.0.11"),
    ("prod-db-1", "10.98.0.41"),
    ("prod-db-2", "10.98.0.42"),
    ("prod-db-3", "10.98.0.43"),
];
const DB_PASSWORD: &str = "db-pw-ha-5d1e-secret";
/// What an option file would cut (`#`) or take apart (quotes): the db
/// VMs that join the first one in the first deploy do so by SST with it.
const SST_PASSWORD: &str = "sst#pw\"q\"-91c2";

#[test]
fn prod_serves_through_the_vip_while_it_rolls_and_survives_kills() {
    let baked = baked();
    let _vms = vm_lock();
    let project = &baked.project;
    let started = Instant::now();
    let build = project.oxbake(&["build", "backend", "db", "lb", "--if-changed"]);
    assert_eq!(build.code(), 0, "{}", build.stderr());
    figure(format!(
        "ha e2e: bakes of backend, db, lb (those not baked yet) took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let original = project.read("oxbake.toml");
    // New versions are recorded below; other tests read the fixture's
    // registry, so it is put back as it was.
    let images = tempfile::tempdir().unwrap();
    copy_tree(&project.root().join("images"), images.path());
    let registry = Registry::for_project(project.root());
    for role in ROLES {
        let latest = registry.latest(role, true).unwrap().expect("baked");
        registry
            .set_channel(role, "prod", &latest.version, "test", "e2e ha")
            .unwrap();
    }
    project.write("oxbake.toml", &prod_config(&original, project.root()));
    let mut segment_client = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenario(project, &mut segment_client)
    }));
    drop(segment_client);
    let destroy = oxbake(project, &["destroy", "prod"]);
    project.write("oxbake.toml", &original);
    std::fs::remove_dir_all(project.root().join("images")).unwrap();
    copy_tree(images.path(), &project.root().join("images"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(destroy.code(), 0, "{}", destroy.stderr());
    let left: Vec<String> = vm_names(project.root())
        .into_iter()
        .filter(|n| n.starts_with("prod-"))
        .collect();
    assert!(left.is_empty(), "destroy left {left:?}");
    assert!(
        !project.root().join(".oxbake/local/nets/prod").exists(),
        "the segment outlived its last vm"
    );
}

fn scenario(project: &TestProject, segment_client: &mut Option<SegmentClient>) {
    let root = project.root();
    let started = Instant::now();
    let first = oxbake(project, &["deploy", "prod"]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    figure(format!(
        "ha e2e: first deploy of prod (8 VMs) took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let https = segment_client.insert(SegmentClient::join(root)).url();
    wait_for(&https, Duration::from_secs(60)).expect("the VIP does not answer from the segment");
    assert_eq!(galera(root), "3 Synced");
    make_stream_table(root);

    rolling_deploy(project, &https);
    let killed_lb = lb_failover(root, &https);
    db_loss(project, killed_lb);
    quorum_refused(project);
}

/// A new version of ui (the same template recorded again): its 2 VMs
/// replaced one at a time behind the lbs while both streams run. The
/// request stream reaches the ui only (no OX in CI). The other roles'
/// replacements are the same stop-first one; rolling db as well took CI
/// past its time (see the module).
const ROLLED: [&str; 1] = ["ui"];

fn rolling_deploy(project: &TestProject, https: &str) {
    let root = project.root();
    for role in ROLLED {
        record_again(project, role, "prod", "e2e ha: rolling deploy");
    }
    let before = vm_names(root);
    let done = Arc::new(AtomicBool::new(false));
    let requests = request_stream(https.to_owned(), done.clone());
    let writes = write_stream(root.to_path_buf(), 1, done.clone());
    let plugged = most_qemus_plugged(root.to_path_buf(), done.clone());
    std::thread::sleep(Duration::from_secs(5));
    let started = Instant::now();
    let rolled = oxbake(project, &["deploy", "prod"]);
    let took = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(5));
    done.store(true, Ordering::Relaxed);
    let requests = requests.join().unwrap();
    let writes = writes.join().unwrap();
    let plugged = plugged.join().unwrap();
    assert_eq!(rolled.code(), 0, "{}", rolled.stderr());
    let found = rows(root);
    let lost: Vec<u64> = writes.acked.difference(&found).copied().collect();
    figure(format!(
        "ha e2e: rolling deploy of ui (2 VMs) took {took:.0} s; through the VIP \
         {} requests sent, {} failed; {} writes sent, {} acknowledged, {} failed; {} rows found \
         afterwards, {} acknowledged rows lost; at most {plugged} VMs on the segment",
        requests.sent,
        requests.failed.len(),
        writes.sent,
        writes.acked.len(),
        writes.failed,
        found.len(),
        lost.len()
    ));
    let replaced = vm_names(root)
        .into_iter()
        .filter(|n| !before.contains(n))
        .count();
    assert_eq!(replaced, 2, "{:?}", vm_names(root));
    assert!(
        plugged <= SLOTS.len(),
        "{plugged} VMs on the segment: an old VM ran beside its replacement"
    );
    // Each replacement's host key took its slot's line over.
    let known = std::fs::read_to_string(root.join(".oxbake/known_hosts/prod")).unwrap();
    let named = |name: &str| {
        known
            .lines()
            .any(|l| l.split_whitespace().nth(3) == Some(name))
    };
    let rolled_slot = |s: &str| ROLLED.iter().any(|r| s.starts_with(&format!("prod-{r}-")));
    for (slot, _) in SLOTS.iter().filter(|(s, _)| rolled_slot(s)) {
        let now = current(root, slot);
        assert!(
            now != *slot && named(&now) && !named(slot),
            "{slot}: {known}"
        );
    }
    assert!(requests.sent > 20, "too few requests: {}", requests.sent);
    assert!(writes.acked.len() > 20, "too few writes: {}", writes.sent);
    assert_eq!(requests.failed, Vec::<String>::new(), "failed requests");
    assert_eq!(lost, Vec::<u64>::new(), "acknowledged rows lost");
    assert_eq!(galera(root), "3 Synced");
}

/// The QEMU of the lb that holds the VIP is killed: the other lb takes the
/// address over. Returns the slot of the killed lb.
fn lb_failover(root: &Path, https: &str) -> &'static str {
    let holder = ["prod-lb-1", "prod-lb-2"]
        .into_iter()
        .find(|slot| {
            let out = ssh(root, slot, "ip -4 -o addr show dev eth0");
            String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
        })
        .expect("no lb holds the VIP");
    let killed = Instant::now();
    kill_qemu(root, holder);
    let back = wait_for(https, Duration::from_secs(60));
    let back =
        back.unwrap_or_else(|| panic!("the VIP did not answer within 60 s of {holder}'s loss"));
    let seconds = (back - killed).as_secs_f64();
    figure(format!(
        "ha e2e: the VIP answered again {seconds:.1} s after {holder}'s QEMU was killed"
    ));
    assert!(seconds < 20.0, "VIP failover took {seconds:.1} s");
    holder
}

/// A db VM's QEMU is killed while writes go on; the next deploy starts it
/// (and the killed lb) again, with the same VMs, and the cluster is whole.
fn db_loss(project: &TestProject, killed_lb: &str) {
    let root = project.root();
    let done = Arc::new(AtomicBool::new(false));
    let writes = write_stream(root.to_path_buf(), 1_000_000, done.clone());
    std::thread::sleep(Duration::from_secs(5));
    kill_qemu(root, "prod-db-3");
    std::thread::sleep(Duration::from_secs(30));
    done.store(true, Ordering::Relaxed);
    let writes = writes.join().unwrap();
    let after_kill = writes.acked_after.len();
    figure(format!(
        "ha e2e: with prod-db-3 killed, {} writes sent, {} acknowledged ({after_kill} after the \
         kill), {} failed",
        writes.sent,
        writes.acked.len(),
        writes.failed
    ));
    assert!(after_kill > 3, "writes stopped with one db node lost");

    let before = vm_names(root);
    let stopped = [current(root, killed_lb), current(root, "prod-db-3")];
    let plan = oxbake(project, &["deploy", "prod", "--plan"]);
    for vm in &stopped {
        let row = plan.stdout();
        let row = row.lines().find(|l| l.contains(vm.as_str()));
        assert!(
            row.is_some_and(|r| r.contains("start") && r.contains("stopped")),
            "{vm}: {}",
            plan.stdout()
        );
    }
    let started = Instant::now();
    let again = oxbake(project, &["deploy", "prod"]);
    assert_eq!(again.code(), 0, "{}", again.stderr());
    for vm in &stopped {
        let said = format!("vm `{vm}` is running and healthy again");
        assert!(again.stderr().contains(&said), "{}", again.stderr());
    }
    assert_eq!(vm_names(root), before, "the same VMs, no other");
    figure(format!(
        "ha e2e: the deploy after the kills (an lb and a db started again) took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(galera(root), "3 Synced");
    // The node that was killed caught up: every acknowledged row on all 3.
    let found = rows(root);
    let lost = writes.acked.difference(&found).count();
    assert_eq!(lost, 0, "acknowledged rows lost with prod-db-3");
    let noop = oxbake(project, &["deploy", "prod"]);
    assert_eq!(noop.code(), 0, "{}", noop.stderr());
    assert_eq!(
        noop.stdout(),
        "nothing to do: environment `prod` is up to date\n"
    );
}

/// db from 3 to 1 in one step would leave the cluster without a majority:
/// the plan refuses it and nothing changes.
fn quorum_refused(project: &TestProject) {
    let root = project.root();
    let config = project.read("oxbake.toml");
    let before = vm_names(root);
    // db's table is the first of prod's with `count = 3`; one VM keeps one
    // address (check refuses more).
    let at = config.find("[environments.prod.roles.db]\n").unwrap();
    let (head, tail) = config.split_at(at);
    let tail = tail.replacen("count = 3\n", "count = 1\n", 1).replacen(
        "addresses = [\"10.98.0.41\", \"10.98.0.42\", \"10.98.0.43\"]",
        "addresses = [\"10.98.0.41\"]",
        1,
    );
    let lowered = format!("{head}{tail}");
    assert!(
        lowered.contains("count = 1\naddresses = [\"10.98.0.41\"]\n"),
        "db was not lowered to one VM"
    );
    project.write("oxbake.toml", &lowered);
    let plan = oxbake(project, &["deploy", "prod", "--plan"]);
    project.write("oxbake.toml", &config);
    assert_eq!(plan.code(), 1, "{}{}", plan.stdout(), plan.stderr());
    assert!(
        plan.stderr()
            .contains("role `db` keeps a majority of its running VMs (quorum = \"majority\"): the plan destroys 2 of 3, leaving 1"),
        "{}",
        plan.stderr()
    );
    assert_eq!(vm_names(root), before);
    assert_eq!(galera(root), "3 Synced");
}

/// The shipped `prod` environment, smaller: 1 GiB VMs, one backend, no
/// services and no monitoring VM (the sections from services to ui; the
/// monitoring VM is proven on `lab`), a real certificate for the ui and
/// the lb.
fn prod_config(original: &str, root: &Path) -> String {
    let cert = self_signed(root, "prod", "prod.example");
    let start = original.find("[environments.prod.roles.services]").unwrap();
    let end = original.find("[environments.prod.roles.ui]").unwrap();
    let mut text = format!("{}{}", &original[..start], &original[end..]);
    let (head, prod) = text.split_at(text.find("[environments.prod]").unwrap());
    let prod = prod.replace(
        "tls_certificate = \"\"",
        &format!("tls_certificate = \"\"\"\n{cert}\"\"\""),
    );
    text = format!("{head}{prod}");
    let two = "[environments.prod.roles.backend]\ncount = 2\naddresses = [\"10.98.0.11\", \"10.98.0.12\"]\n";
    assert!(
        text.contains(two),
        "prod's backends are not as this test expects"
    );
    text = text.replace(
        two,
        "[environments.prod.roles.backend]\ncount = 1\naddresses = [\"10.98.0.11\"]\n",
    );
    for role in ROLES {
        let header = format!("[environments.prod.roles.{role}]\n");
        text = text.replace(&header, &format!("{header}memory_mib = 1024\ncores = 1\n"));
    }
    text
}

fn oxbake(project: &TestProject, args: &[&str]) -> Run {
    let key = tls_key(project.root(), "prod");
    // The db role's backup secrets: prod here has no backup VM (it is cut
    // with services), so no backup is taken, but the role reads them.
    static BACKUP_KEYS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (ssh_key, host_key) = BACKUP_KEYS.get_or_init(|| {
        (
            ssh_private_key(project.root(), "ha-backup-ssh"),
            ssh_private_key(project.root(), "ha-backup-host"),
        )
    });
    let run = project.oxbake_env(
        args,
        &[
            ("OXBAKE_SECRET_TLS_PRIVATE_KEY", &key),
            ("OXBAKE_SECRET_DB_PASSWORD", DB_PASSWORD),
            ("OXBAKE_SECRET_SST_PASSWORD", SST_PASSWORD),
            ("OXBAKE_SECRET_OX_ADMIN_PASSWORD", "admin-pw-ha-0b7f-secret"),
            ("OXBAKE_SECRET_BACKUP_PASSWORD", "restic-pw-ha-93c2-secret"),
            ("OXBAKE_SECRET_BACKUP_SSH_KEY", ssh_key),
            ("OXBAKE_SECRET_BACKUP_HOST_KEY", host_key),
        ],
    );
    eprintln!("oxbake {}:\n{}", args.join(" "), run.stderr());
    run
}

/// OpenSSH to the VM that holds `slot`, checking the host key oxbake pinned
/// for its address.
fn ssh(root: &Path, slot: &str, script: &str) -> Output {
    env_ssh(
        root,
        "prod",
        &current(root, slot),
        Some(address(slot)),
        script,
    )
}

fn address(slot: &str) -> &'static str {
    SLOTS.iter().find(|(n, _)| *n == slot).unwrap().1
}

/// One SSH connection to a slot's VM kept open (OpenSSH's multiplexing):
/// the write stream opens a session on it per write instead of logging in
/// each time, which under TCG costs the guests' shared two cores about what
/// a replacement's boot does. A write that finds it gone connects on its
/// own (`ControlMaster=no` falls back), as before. Dropped: it closes.
struct Mux {
    master: Child,
    control: String,
}

impl Mux {
    fn open(root: &Path, slot: &str) -> Mux {
        let path = std::env::temp_dir().join(format!("oxbake-ha-{}-{slot}", std::process::id()));
        let control = format!("ControlPath={}", path.display());
        let vm = current(root, slot);
        let master = env_ssh_command(
            root,
            "prod",
            &vm,
            Some(address(slot)),
            &["-M", "-N", "-o", &control],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        Mux { master, control }
    }

    fn ssh(&self, root: &Path, slot: &str, script: &str) -> Output {
        let vm = current(root, slot);
        let extra = ["-o", &self.control, "-o", "ControlMaster=no"];
        env_ssh_command(root, "prod", &vm, Some(address(slot)), &extra)
            .arg(script)
            .output()
            .unwrap()
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        let _ = self.master.kill();
        let _ = self.master.wait();
        if let Some(path) = self.control.strip_prefix("ControlPath=") {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A client on prod's segment: the network namespace NAME with a tap
/// (`vde_plug2tap`, plugged into the segment's switch) at 10.98.0.2/24.
/// Dropped: the plug stops and the namespace goes.
struct SegmentClient {
    namespace: String,
    plug: Child,
}

impl SegmentClient {
    fn join(root: &Path) -> Self {
        let namespace = format!("oxbake-ha-{}", std::process::id());
        let made = Command::new("ip")
            .args(["netns", "add", &namespace])
            .status()
            .unwrap();
        assert!(made.success(), "ip netns add {namespace} (root needed)");
        let plug = Command::new("ip")
            .args(["netns", "exec", &namespace, "vde_plug2tap", "-s"])
            .arg(root.join(".oxbake/local/nets/prod/sock"))
            .arg("oxtap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vde_plug2tap (vde2) starts");
        let client = Self { namespace, plug };
        let setup =
            "ip link set lo up && ip addr replace 10.98.0.2/24 dev oxtap0 && ip link set oxtap0 up";
        let mut last = None;
        for _ in 0..50 {
            let out = client.exec(&["sh", "-c", setup]);
            if out.status.success() {
                return client;
            }
            last = Some(out);
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the segment client's tap: {last:?}");
    }

    /// `argv` inside the namespace.
    fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .args(argv)
            .output()
            .unwrap()
    }

    /// What [`get`] fetches: the VIP's `/`, from the namespace.
    fn url(&self) -> String {
        format!("{}|https://{VIP}/", self.namespace)
    }
}

impl Drop for SegmentClient {
    fn drop(&mut self) {
        let _ = self.plug.kill();
        let _ = self.plug.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// One GET of `/` over HTTPS from the segment client (`target` is
/// `NAMESPACE|URL`): the ui's redirect (302) is an answer.
fn get(target: &str, max: u32) -> Result<(), String> {
    let (namespace, url) = target.split_once('|').unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", namespace, "curl", "-sk", "-o", "/dev/null"])
        .args(["-w", "%{http_code}", "--max-time"])
        .arg(max.to_string())
        .arg(url)
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    if code == "302" {
        Ok(())
    } else {
        Err(format!("curl exit {:?}, status {code}", out.status.code()))
    }
}

/// When `url` first answered, tried every 0.25 s for up to `limit`.
fn wait_for(url: &str, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if get(url, 2).is_ok() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

struct Requests {
    sent: usize,
    /// When (seconds into the stream) and how each failed request failed.
    failed: Vec<String>,
}

/// GETs through the VIP, one every half second or so (each is a TLS handshake with an
/// lb and one of the lb with a ui: work for the guests), until `done`.
fn request_stream(url: String, done: Arc<AtomicBool>) -> JoinHandle<Requests> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut result = Requests {
            sent: 0,
            failed: Vec::new(),
        };
        while !done.load(Ordering::Relaxed) {
            result.sent += 1;
            if let Err(why) = get(&url, 15) {
                let at = started.elapsed().as_secs_f64();
                eprintln!("ha e2e: request failed at {at:.1} s: {why}");
                result.failed.push(format!("{at:.1} s: {why}"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        result
    })
}

struct Writes {
    sent: usize,
    failed: usize,
    acked: BTreeSet<u64>,
    /// Those acknowledged after the first 5 s of the stream.
    acked_after: BTreeSet<u64>,
}

/// One row at a time (ids from `first`) through the backend's configdb
/// HAProxy (127.0.0.1:3307, the write port OX uses), over SSH (one
/// connection, [`Mux`]), one every half second or so.
/// Acknowledged: the client exited 0; SSH itself failing counts as failed.
fn write_stream(root: PathBuf, first: u64, done: Arc<AtomicBool>) -> JoinHandle<Writes> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut result = Writes {
            sent: 0,
            failed: 0,
            acked: BTreeSet::new(),
            acked_after: BTreeSet::new(),
        };
        let mut id = first;
        let slot = "prod-backend-1";
        let mux = Mux::open(&root, slot);
        while !done.load(Ordering::Relaxed) {
            result.sent += 1;
            let out = mux.ssh(&root, slot, &insert(id));
            if out.status.success() {
                result.acked.insert(id);
                if started.elapsed() > Duration::from_secs(5) {
                    result.acked_after.insert(id);
                }
            } else {
                eprintln!(
                    "ha e2e: write {id} failed on {slot} (exit {:?}): {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                result.failed += 1;
            }
            id += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
        result
    })
}

/// The MariaDB client as OX's user through the backend's HAProxy (the
/// option file keeps the password off the command line).
fn sql(port: u16, statement: &str) -> String {
    format!(
        "umask 077; printf '[client]\\nuser=openexchange\\npassword={DB_PASSWORD}\\nhost=127.0.0.1\\nport={port}\\n' \
         > /tmp/oxbake-stream.cnf && mariadb --defaults-extra-file=/tmp/oxbake-stream.cnf \
         --connect-timeout=10 -N -B -e \"{statement}\""
    )
}

fn insert(id: u64) -> String {
    sql(
        3307,
        &format!("INSERT IGNORE INTO oxbake_stream.rows (id) VALUES ({id})"),
    )
}

fn make_stream_table(root: &Path) {
    let make = sql(
        3307,
        "CREATE DATABASE IF NOT EXISTS oxbake_stream; \
         CREATE TABLE IF NOT EXISTS oxbake_stream.rows (id BIGINT PRIMARY KEY)",
    );
    assert_success(&ssh(root, "prod-backend-1", &make), "prod-backend-1");
}

/// Every row id in the table, read from each db node in turn: all three
/// must hold the same rows.
fn rows(root: &Path) -> BTreeSet<u64> {
    let mut seen: Option<BTreeSet<u64>> = None;
    for slot in ["prod-db-1", "prod-db-2", "prod-db-3"] {
        let out = ssh(
            root,
            slot,
            "sudo mariadb -N -B -e 'SET SESSION wsrep_sync_wait = 1; SELECT id FROM oxbake_stream.rows'",
        );
        let text = assert_success(&out, slot);
        let ids: BTreeSet<u64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if let Some(first) = &seen {
            assert_eq!(first, &ids, "{slot} holds other rows than prod-db-1");
        }
        seen = Some(ids);
    }
    seen.unwrap()
}

/// `SIZE STATE` of the cluster as prod-db-1 sees it.
fn galera(root: &Path) -> String {
    let out = ssh(
        root,
        "prod-db-1",
        "sudo mariadb -N -B -e \"SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment')\" | sort | cut -f2 | tr '\\n' ' '",
    );
    assert_success(&out, "prod-db-1").trim().to_owned()
}

/// The most QEMUs plugged into prod's switch at once (sampled every
/// 0.25 s) until `done`.
fn most_qemus_plugged(root: PathBuf, done: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mgmt = root.join(".oxbake/local/nets/prod/mgmt");
        let mut most = 0;
        while !done.load(Ordering::Relaxed) {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo port/allprint | socat -t1 - UNIX-CONNECT:{}",
                    mgmt.display()
                ))
                .output()
                .unwrap();
            let ports = String::from_utf8_lossy(&out.stdout);
            most = most.max(ports.matches("prog   : QEMU").count());
            std::thread::sleep(Duration::from_millis(250));
        }
        most
    })
}

/// SIGKILL to the QEMU of the VM that holds `slot`: the VM is gone at once,
/// as when its host fails.
fn kill_qemu(root: &Path, slot: &str) {
    let vm = current(root, slot);
    let pid = std::fs::read_to_string(root.join(format!(".oxbake/local/vms/{vm}/pid"))).unwrap();
    let status = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {vm}'s QEMU ({})", pid.trim());
}
