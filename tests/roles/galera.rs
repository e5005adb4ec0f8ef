//! The db role's Galera files: the node's host file names its cluster and
//! every peer from the environment, the baked file holds no cluster
//! address and wsrep stays off in the image, MariaDB reads both as one
//! valid set of options, and the start and health scripts parse.

use super::{Roles, assert_success, run, stdout, write};

const HOST_CNF: &str = "/etc/mysql/mariadb.conf.d/80-oxbake-host.cnf";

#[test]
fn the_host_file_joins_the_environments_cluster_and_the_image_joins_none() {
    let roles = Roles::load();
    let host = roles.render_deploy("db", &roles.deploy_source_for("db", HOST_CNF));
    for line in [
        "wsrep_on = ON\n",
        "wsrep_cluster_name = dev-galera\n",
        "wsrep_cluster_address = gcomm://10.20.0.41,10.20.0.42,10.20.0.43\n",
        "wsrep_node_address = 10.20.0.41\n",
        "wsrep_node_name = dev-db-1\n",
        "wsrep_sst_auth = \"sst:test-sst-password-e0d4\"\n",
        "bind_address = 10.20.0.41\n",
    ] {
        assert!(host.contains(line), "{line:?} not in:\n{host}");
    }
    let peers = roles.render_deploy(
        "db",
        &roles.deploy_source_for("db", "/etc/oxbake/galera/peers"),
    );
    assert_eq!(peers, "10.20.0.41\n10.20.0.42\n10.20.0.43\n");
    let backends = roles.render_deploy(
        "db",
        &roles.deploy_source_for("db", "/etc/oxbake/galera/backends"),
    );
    assert_eq!(backends, "10.20.0.11\n10.20.0.14\n");

    let root = roles.project.root.clone();
    let baked = std::fs::read_to_string(root.join("files/galera/70-oxbake-galera.cnf")).unwrap();
    assert!(!baked.contains("gcomm://"), "{baked}");
    assert!(baked.contains("wsrep_on = OFF\n"), "{baked}");
}

/// The SST password reaches MariaDB as it was, whatever it holds: its own
/// option file reader (`my_print_defaults`) reads back exactly
/// `sst:PASSWORD` from the host file, and no character of it starts an
/// option of its own.
#[test]
fn the_sst_password_arrives_whole_in_the_option_file() {
    let mut roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    for password in [
        "plain-e0d4",
        "with # hash",
        "quotes \"double\" and 'single'",
        "back\\slash\\n not a newline",
        " leading and trailing ",
        "semi;colon = equals [mariadbd]",
        "tab\there",
        "two\nwsrep_on = OFF",
    ] {
        roles.set("db", "secrets", "sst_password", password);
        let host = roles.render_deploy("db", &roles.deploy_source_for("db", HOST_CNF));
        let file = write(dir.path(), "80-oxbake-host.cnf", &host);
        let defaults = run(
            "my_print_defaults",
            &[&format!("--defaults-file={}", file.display()), "mariadbd"],
        );
        assert_success(&defaults, "my_print_defaults");
        let text = stdout(&defaults);
        assert!(
            text.contains(&format!("--wsrep_sst_auth=sst:{password}\n")),
            "{password:?}:\n{host}\n{text}"
        );
        let options: Vec<&str> = text.lines().filter(|l| l.starts_with("--")).collect();
        assert_eq!(options.len(), 7, "{password:?}: {text}");
        assert!(!text.contains("--wsrep_on=OFF"), "{text}");
    }
    // The file that holds the password alone, which the start script reads
    // a line at a time, refuses a line break instead.
    let source = roles.deploy_source_for("db", "/etc/oxbake/secrets/sst_password");
    let refused = roles.try_render_deploy("db", &source).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("line break or control character")
            && !refused.to_string().contains("wsrep_on = OFF"),
        "{refused}"
    );
}

/// mariadbd reads the baked file then the host file: the host's wsrep
/// settings win, and the options are all known to this MariaDB.
#[test]
fn mariadb_reads_the_baked_and_the_host_file_as_valid_options() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = roles.project.root.clone();
    std::fs::copy(
        root.join("files/galera/70-oxbake-galera.cnf"),
        d.join("70-oxbake-galera.cnf"),
    )
    .unwrap();
    let host = roles.render_deploy("db", &roles.deploy_source_for("db", HOST_CNF));
    write(d, "80-oxbake-host.cnf", &host);
    let my = write(
        d,
        "my.cnf",
        &format!(
            "!include {0}/70-oxbake-galera.cnf\n!include {0}/80-oxbake-host.cnf\n",
            d.display()
        ),
    );
    let my = format!("--defaults-file={}", my.display());
    let defaults = run("mariadbd", &[&my, "--print-defaults"]);
    assert_success(&defaults, "mariadbd --print-defaults");
    let text = stdout(&defaults);
    let on = text.rfind("--wsrep_on=ON").expect("wsrep on");
    assert!(on > text.find("--wsrep_on=OFF").unwrap(), "{text}");
    for option in [
        "--wsrep_provider=/usr/lib/galera/libgalera_smm.so",
        "--binlog_format=ROW",
        "--innodb_autoinc_lock_mode=2",
        "--wsrep_sst_method=mariabackup",
    ] {
        assert!(text.contains(option), "{option}: {text}");
    }
    let help = run("mariadbd", &[&my, "--verbose", "--help"]);
    assert_success(&help, "mariadbd --verbose --help (unknown option?)");

    for script in ["oxbake-galera-start", "oxbake-galera-health"] {
        let path = root.join("files/galera").join(script);
        assert_success(&run("bash", &["-n", path.to_str().unwrap()]), script);
    }
}
