//! The ui role's Nginx: nginx.conf, the HTTP redirect and the HTTPS site,
//! rendered with a certificate made by openssl, pass `nginx -t`; then a real
//! nginx serves them in a network namespace of its own, next to a stand-in
//! backend on the deploy address, and the role's curl checks are run there.

use std::path::Path;

use super::{Roles, assert_check, assert_success, in_netns, made_tls_pair, run, stdout, write};

/// Renders the ui's Nginx configuration into `dir`, every path that points
/// into /etc/nginx, /run or /var pointed into `dir` instead.
fn render_site(dir: &Path) -> Roles {
    let mut roles = Roles::load();
    let (cert, key) = made_tls_pair(dir);
    roles.set("ui", "env", "tls_certificate", cert);
    roles.set("ui", "secrets", "tls_private_key", key);

    let d = dir.display().to_string();
    let local = |text: String| {
        text.replace("/etc/nginx/", &format!("{d}/"))
            .replace("/run/nginx.pid", &format!("{d}/nginx.pid"))
            .replace("/var/log/nginx/", &format!("{d}/"))
            .replace("root /var/www/html;", &format!("root {d}/www;"))
    };
    let bake = |dest: &str| local(roles.render_bake("ui", &roles.bake_source_for("ui", dest)));
    let deploy =
        |dest: &str| local(roles.render_deploy("ui", &roles.deploy_source_for("ui", dest)));
    write(dir, "nginx.conf", &bake("/etc/nginx/nginx.conf"));
    write(
        dir,
        "sites-enabled/default",
        &bake("/etc/nginx/sites-available/default"),
    );
    let site = deploy("/etc/nginx/sites-enabled/openexchange_ui.conf");
    assert!(
        site.contains(&format!("ssl_certificate {d}/tls/appsuite.crt;")),
        "{site}"
    );
    write(dir, "sites-enabled/openexchange_ui.conf", &site);
    write(
        dir,
        "tls/appsuite.crt",
        &deploy("/etc/nginx/tls/appsuite.crt"),
    );
    write(
        dir,
        "tls/appsuite.key",
        &deploy("/etc/nginx/tls/appsuite.key"),
    );
    std::fs::create_dir_all(dir.join("modules-enabled")).unwrap();
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::copy("/etc/nginx/mime.types", dir.join("mime.types")).expect("nginx's mime.types");
    write(dir, "www/appsuite/index.html", "ui-ok\n");
    write(dir, "backend/appsuite/api/ping", "backend-ok\n");
    roles
}

fn nginx_t(dir: &Path) -> std::process::Output {
    let conf = dir.join("nginx.conf");
    run(
        "/usr/sbin/nginx",
        &[
            "-t",
            "-c",
            conf.to_str().unwrap(),
            "-p",
            dir.to_str().unwrap(),
        ],
    )
}

#[test]
fn nginx_accepts_the_bake_and_the_deploy_configuration() {
    let dir = tempfile::tempdir().unwrap();
    render_site(dir.path());
    // Bake: no certificate yet, only the redirect.
    let site = dir.path().join("sites-enabled/openexchange_ui.conf");
    let deployed = std::fs::read_to_string(&site).unwrap();
    std::fs::remove_file(&site).unwrap();
    assert_success(&nginx_t(dir.path()), "nginx -t (bake)");
    // Deploy: the HTTPS site with its certificate.
    std::fs::write(&site, deployed).unwrap();
    let out = nginx_t(dir.path());
    assert_success(&out, "nginx -t (deploy)");
    assert!(String::from_utf8_lossy(&out.stderr).contains("test is successful"));
}

#[test]
fn nginx_redirects_serves_the_ui_and_proxies_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let roles = render_site(dir.path());
    // The workers run as www-data and must reach the UI files.
    let chmod = run("chmod", &["-R", "go+rX", dir.path().to_str().unwrap()]);
    assert_success(&chmod, "chmod");
    let key = dir.path().join("tls/appsuite.key");
    assert_success(&run("chmod", &["0600", key.to_str().unwrap()]), "chmod key");
    let d = dir.path().display();
    let checks: Vec<_> = roles
        .recipe("ui")
        .checks
        .iter()
        .filter(|c| c.run.starts_with("curl "))
        .collect();
    assert!(checks.len() >= 2, "the ui checks HTTP and HTTPS");
    let mut script = format!(
        "ip addr add 10.20.0.11/32 dev lo && \
         python3 -m http.server 8009 --bind 10.20.0.11 --directory {d}/backend >/dev/null 2>&1 & \
         trap 'kill $! 2>/dev/null; nginx -c {d}/nginx.conf -p {d} -s stop' EXIT; \
         nginx -c {d}/nginx.conf -p {d} || exit 1; \
         for i in $(seq 100); do curl -s -o /dev/null http://10.20.0.11:8009/ && break; sleep 0.1; done; \
         echo; echo '== ui'; curl -sk https://127.0.0.1/appsuite/; \
         echo '== api'; curl -sk https://127.0.0.1/appsuite/api/ping; "
    );
    for (i, check) in checks.iter().enumerate() {
        script.push_str(&format!("echo; echo '== check {i}'; {}; ", check.run));
    }
    let out = in_netns(&script);
    assert_success(&out, "nginx in a network namespace");
    let text = stdout(&out);
    let part = |name: &str| {
        text.split(&format!("== {name}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n== ").next())
            .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
            .to_owned()
    };
    assert_eq!(part("ui").trim(), "ui-ok");
    assert_eq!(
        part("api").trim(),
        "backend-ok",
        "/appsuite/api is not proxied"
    );
    for (i, check) in checks.iter().enumerate() {
        assert_check("ui", check, &part(&format!("check {i}")));
    }
}
