//! The lb role (HAProxy and keepalived) and the clustered backend: their
//! deploy configurations, rendered with the example values and with the
//! shipped `lab` and `prod` environments, pass `haproxy -c` and
//! `keepalived --config-test`; the firewall opens VRRP and Hazelcast to the
//! role's peers only.

use std::path::Path;
use std::process::Command;

use super::{
    Roles, assert_check, assert_success, in_netns, made_tls_pair, run, stdout, write, write_mode,
};

/// `haproxy -c` on `text`, with the certificate path pointed into `dir`.
fn haproxy_check(dir: &Path, name: &str, text: &str) -> String {
    let d = dir.display();
    let config = write(
        dir,
        name,
        &text.replace("/etc/haproxy/tls/", &format!("{d}/tls/")),
    );
    let out = run("haproxy", &["-c", "-f", config.to_str().unwrap()]);
    assert_success(&out, &format!("haproxy -c {name}:\n{text}"));
    stdout(&out)
}

/// The lb's deploy files with a made certificate, in `dir`.
fn lb_with_certificate(dir: &Path) -> Roles {
    let mut roles = Roles::load();
    let (cert, key) = made_tls_pair(dir);
    roles.set("lb", "env", "tls_certificate", cert);
    roles.set("lb", "secrets", "tls_private_key", key);
    let pem = roles.render_deploy(
        "lb",
        &roles.deploy_source_for("lb", "/etc/haproxy/tls/site.pem"),
    );
    write(dir, "tls/site.pem", &pem);
    roles
}

#[test]
fn haproxy_accepts_the_lb_configuration_and_meets_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let roles = lb_with_certificate(dir.path());
    let cfg = roles.render_deploy(
        "lb",
        &roles.deploy_source_for("lb", "/etc/haproxy/haproxy.cfg"),
    );
    let said = haproxy_check(dir.path(), "haproxy.cfg", &cfg);
    for check in roles
        .recipe("lb")
        .checks
        .iter()
        .filter(|c| c.run.ends_with("haproxy -c -f /etc/haproxy/haproxy.cfg"))
    {
        assert_check("lb", check, &said);
    }
    // Sticky on the route suffix OX puts on JSESSIONID, in slot order.
    for (n, address) in [(1, "10.20.0.11"), (2, "10.20.0.21")] {
        assert!(
            cfg.contains(&format!(
                "use-server OX{n} if {{ req.cook(JSESSIONID) -m end .OX{n} }}\n"
            )),
            "{cfg}"
        );
        assert!(
            cfg.contains(&format!("server OX{n} {address}:8009\n")),
            "{cfg}"
        );
    }
    for (n, address) in [(1, "10.20.0.12"), (2, "10.20.0.22")] {
        assert!(
            cfg.contains(&format!("server ui{n} {address}:443\n")),
            "{cfg}"
        );
    }
    for line in [
        "balance roundrobin",
        "option redispatch",
        "http-request redirect scheme https code 301",
        "bind :443 ssl crt /etc/haproxy/tls/site.pem",
        "default-server check inter 1s fall 2 rise 2 ssl verify none",
        "retries 3",
        "timeout connect 2s",
        "http-check expect status 302",
    ] {
        assert!(cfg.contains(line), "`{line}` is not in:\n{cfg}");
    }
    // The middleware paths are the ui's nginx's own.
    let nginx = roles.render_deploy(
        "ui",
        &roles.deploy_source_for("ui", "/etc/nginx/sites-enabled/openexchange_ui.conf"),
    );
    let paths = "^/(appsuite/api|ajax|servlet|realtime|infostore|webservices|caldav|carddav|\\.well-known/(caldav|carddav))(/|$)";
    assert!(nginx.contains(paths), "{nginx}");
    assert!(cfg.contains(&format!("path_reg {paths}\n")), "{cfg}");
}

#[test]
fn keepalived_accepts_its_configuration_with_a_priority_per_slot() {
    // keepalived's script security refuses a script under a folder others
    // may write (/tmp): the track script goes under the repository.
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let track = install_track_script(dir.path());
    let mut roles = Roles::load();
    let mut rendered = Vec::new();
    for (slot, address) in [(1, "10.20.0.5"), (2, "10.20.0.6")] {
        roles.set("lb", "vm", "index", slot);
        roles.set("lb", "vm", "address", address);
        let text = roles.render_deploy(
            "lb",
            &roles.deploy_source_for("lb", "/etc/keepalived/keepalived.conf"),
        );
        let here = text.replace(TRACK_SCRIPT, track.to_str().unwrap());
        let file = write(dir.path(), &format!("keepalived-{slot}.conf"), &here);
        let out = run(
            "keepalived",
            &[
                "--config-test",
                "--use-file",
                file.to_str().unwrap(),
                "--log-console",
            ],
        );
        assert_success(&out, &format!("keepalived --config-test:\n{text}"));
        let peer = if slot == 1 { "10.20.0.6" } else { "10.20.0.5" };
        let peers = text
            .split("unicast_peer {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_default();
        assert_eq!(
            peers.split_whitespace().collect::<Vec<_>>(),
            [peer],
            "{text}"
        );
        assert!(
            text.contains(&format!("unicast_src_ip {address}\n")),
            "{text}"
        );
        for line in [
            "virtual_router_id 20\n",
            "advert_int 1\n",
            "10.20.0.4/24 dev eth0\n",
            "haproxy_runs\n",
        ] {
            assert!(text.contains(line), "`{line}` is not in:\n{text}");
        }
        rendered.push(text);
    }
    assert!(rendered[0].contains("priority 150\n"), "{}", rendered[0]);
    assert!(rendered[1].contains("priority 140\n"), "{}", rendered[1]);
}

/// Where the lb image has keepalived's track script.
const TRACK_SCRIPT: &str = "/usr/local/sbin/oxbake-haproxy-runs";

/// The lb recipe's track script, installed under `dir` (root's, 0755).
fn install_track_script(dir: &Path) -> std::path::PathBuf {
    let roles = Roles::load();
    let source = roles
        .recipe("lb")
        .steps
        .iter()
        .find_map(|s| match &s.action {
            oxbake::recipe::Action::File(f) if f.dest.get_ref() == TRACK_SCRIPT => {
                Some(f.source.get_ref().clone())
            }
            _ => None,
        })
        .expect("the lb recipe installs its track script");
    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("files");
    let text = std::fs::read_to_string(files.join(source)).unwrap();
    write_mode(dir, "oxbake-haproxy-runs", &text, 0o755)
}

/// The track script as keepalived runs it (an exec of its path, no shell
/// of keepalived's in between; Debian's pidof is killall5 under another
/// name, which fails when called by the path it links to), in a PID
/// namespace of its own (other tests' HAProxy is not seen): 1 while no
/// process named haproxy runs, 0 while one does.
#[test]
fn keepalived_track_script_sees_haproxy_as_keepalived_runs_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let track = install_track_script(dir.path());
    let fake = dir.path().join("haproxy");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let script = format!(
        "{t}; echo none=$?; {f} 60 & sleep 0.3; {t}; echo one=$?; kill $!",
        t = track.display(),
        f = fake.display()
    );
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_success(&out, "the track script in a PID namespace");
    assert_eq!(stdout(&out), "none=1\none=0\n");
}

#[test]
fn the_firewall_opens_vrrp_and_hazelcast_to_the_role_peers_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = Roles::load();
    roles.use_environment_roles("backend", "prod");
    roles.set("backend", "vm", "address", "10.98.0.11");
    let d = dir.path().display();
    for (role, own, peer_rule) in [
        (
            "lb",
            "10.20.0.5",
            "ip saddr 10.20.0.6 meta l4proto vrrp accept",
        ),
        (
            "backend",
            "10.98.0.11",
            "ip saddr 10.98.0.12 tcp dport 5701 accept",
        ),
    ] {
        let base = roles.render_bake(role, &roles.bake_source_for(role, "/etc/nftables.conf"));
        let dest = format!("/etc/nftables.d/oxbake-peers-{role}.nft");
        let peers = roles.render_deploy(role, &roles.deploy_source_for(role, &dest));
        assert!(!peers.contains(&format!("{own} ")), "{peers}");
        let main = write(
            dir.path(),
            &format!("{role}.nft"),
            &base.replace("/etc/nftables.d/", &format!("{d}/{role}.d/")),
        );
        // Before deploy the include finds nothing: nothing is opened.
        let script = format!(
            "nft -f {m} && nft list table inet oxbake && echo '== deployed' && \
             mkdir -p {d}/{role}.d && cp {d}/{role}-peers.nft {d}/{role}.d/oxbake-peers-{role}.nft && \
             nft -f {m} && nft list table inet oxbake",
            m = main.display()
        );
        write(dir.path(), &format!("{role}-peers.nft"), &peers);
        let out = in_netns(&script);
        assert_success(&out, &format!("nft with {role}'s peers:\n{peers}"));
        let text = stdout(&out);
        let (baked, deployed) = text.split_once("== deployed").unwrap();
        assert!(!baked.contains("ip saddr"), "{baked}");
        assert!(deployed.contains(peer_rule), "{deployed}");
        assert_eq!(deployed.matches("ip saddr").count(), 1, "{deployed}");
    }
}

#[test]
fn the_backend_keeps_its_own_mariadb_without_a_db_role() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = Roles::load();
    roles.use_environment_roles("backend", "lab");
    roles.set("backend", "vm", "env", "lab");
    roles.set("backend", "vm", "address", "10.99.0.10");
    let render =
        |dest: &str| roles.render_deploy("backend", &roles.deploy_source_for("backend", dest));
    let env = render("/etc/oxbake/configdb.env");
    assert!(env.contains("\nconfigdb=local\n"), "{env}");
    assert!(!env.contains("configdb_"), "{env}");
    let haproxy = render("/etc/haproxy/haproxy.cfg");
    assert!(!haproxy.contains("listen"), "{haproxy}");
    let hazelcast = render("/etc/oxbake/ox-config/hazelcast.properties");
    for line in [
        "com.openexchange.hazelcast.group.name=lab-ox-8.28.0-1\n",
        "com.openexchange.hazelcast.network.join=static\n",
        "com.openexchange.hazelcast.network.join.static.nodes=10.99.0.10\n",
        "com.openexchange.hazelcast.network.interfaces=10.99.0.10\n",
    ] {
        assert!(hazelcast.contains(line), "`{line}` is not in:\n{hazelcast}");
    }
    let server = render("/etc/oxbake/ox-config/server.properties");
    assert!(
        server.contains("com.openexchange.server.backendRoute=OX1\n"),
        "{server}"
    );
    // Without OX's version in the image, the group still has a name.
    let mut bare = Roles::load();
    bare.set("backend", "image", "packages", toml::Table::new());
    let hazelcast = bare.render_deploy(
        "backend",
        &bare.deploy_source_for("backend", "/etc/oxbake/ox-config/hazelcast.properties"),
    );
    assert!(
        hazelcast.contains("com.openexchange.hazelcast.group.name=dev-ox-none\n"),
        "{hazelcast}"
    );
    let _ = dir;
}

#[test]
fn the_backend_reaches_galera_through_its_haproxy_in_prod() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = Roles::load();
    roles.use_environment_roles("backend", "prod");
    roles.set("backend", "vm", "env", "prod");
    for (slot, address) in [(1, "10.98.0.11"), (2, "10.98.0.12")] {
        roles.set("backend", "vm", "index", slot);
        roles.set("backend", "vm", "address", address);
        let render =
            |dest: &str| roles.render_deploy("backend", &roles.deploy_source_for("backend", dest));
        let env = render("/etc/oxbake/configdb.env");
        assert!(env.contains("\nconfigdb=cluster\n"), "{env}");
        let first = if slot == 1 { "yes" } else { "no" };
        assert!(
            env.contains(&format!("\nconfigdb_first={first}\n")),
            "{env}"
        );
        // The file is sourced by sh: it must be valid shell.
        let sourced = write(dir.path(), "configdb.env", &env);
        let out = run(
            "sh",
            &[
                "-c",
                &format!(
                    ". {}; echo $configdb $configdb_read_port $configdb_write_port",
                    sourced.display()
                ),
            ],
        );
        assert_success(&out, "sh . configdb.env");
        assert_eq!(stdout(&out), "cluster 3306 3307\n");
        let cfg = render("/etc/haproxy/haproxy.cfg");
        haproxy_check(dir.path(), "configdb.cfg", &cfg);
        let read = cfg.split("listen configdb-write").next().unwrap();
        let write_part = cfg.split("listen configdb-write").nth(1).unwrap();
        assert!(read.contains("bind 127.0.0.1:3306\n"), "{cfg}");
        assert!(write_part.contains("bind 127.0.0.1:3307\n"), "{cfg}");
        assert!(
            cfg.matches("option mysql-check user haproxy_check post-41\n")
                .count()
                == 2,
            "{cfg}"
        );
        for (n, db) in ["10.98.0.41", "10.98.0.42", "10.98.0.43"]
            .iter()
            .enumerate()
        {
            let n = n + 1;
            assert!(read.contains(&format!("server db{n} {db}:3306\n")), "{cfg}");
            let backup = if n == 1 { "" } else { " backup" };
            assert!(
                write_part.contains(&format!("server db{n} {db}:3306{backup}\n")),
                "{cfg}"
            );
        }
        let hazelcast = render("/etc/oxbake/ox-config/hazelcast.properties");
        for line in [
            "com.openexchange.hazelcast.group.name=prod-ox-8.28.0-1\n".to_owned(),
            "com.openexchange.hazelcast.network.join.static.nodes=10.98.0.11,10.98.0.12\n"
                .to_owned(),
            format!("com.openexchange.hazelcast.network.interfaces={address}\n"),
        ] {
            assert!(
                hazelcast.contains(&line),
                "`{line}` is not in:\n{hazelcast}"
            );
        }
        let server = render("/etc/oxbake/ox-config/server.properties");
        assert!(
            server.contains(&format!("com.openexchange.server.backendRoute=OX{slot}\n")),
            "{server}"
        );
    }
}

/// The lb's backends are the backends' routes: slot n of the backend role
/// is `OXn` on both sides, in the shipped `prod`.
#[test]
fn the_lb_routes_match_the_backend_routes_in_prod() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = lb_with_certificate(dir.path());
    roles.use_environment_roles("lb", "prod");
    roles.use_environment_roles("backend", "prod");
    let cfg = roles.render_deploy(
        "lb",
        &roles.deploy_source_for("lb", "/etc/haproxy/haproxy.cfg"),
    );
    haproxy_check(dir.path(), "prod.cfg", &cfg);
    for (slot, address) in [(1, "10.98.0.11"), (2, "10.98.0.12")] {
        roles.set("backend", "vm", "index", slot);
        let server = roles.render_deploy(
            "backend",
            &roles.deploy_source_for("backend", "/etc/oxbake/ox-config/server.properties"),
        );
        let route = server
            .lines()
            .find_map(|l| l.strip_prefix("com.openexchange.server.backendRoute="))
            .unwrap();
        assert!(
            cfg.contains(&format!("server {route} {address}:8009\n")),
            "{route}:\n{cfg}"
        );
        assert!(cfg.contains(&format!("-m end .{route} }}")), "{cfg}");
    }
    for address in ["10.98.0.21", "10.98.0.22"] {
        assert!(cfg.contains(&format!(" {address}:443\n")), "{cfg}");
    }
}
