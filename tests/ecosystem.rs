//! What oxbake hands to other tools, read by those tools: `oxbake sbom`
//! (CycloneDX 1.5 checked by the CycloneDX Python library's strict JSON
//! validator, SPDX 2.3 by spdx-tools' `pyspdxtools`), `oxbake completions`
//! (loaded by bash, zsh and fish) and `oxbake man` (formatted by groff).
//! CI installs the validators (pip) and sets
//! `OXBAKE_REQUIRE_SBOM_VALIDATORS=1`; elsewhere they are used when found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use oxbake::registry::{Artifact, NewImage, Registry};
use serde_json::Value;

use crate::support::output::assert_success;
use crate::support::project::TestProject;
use crate::support::tools::folder_with;

/// A project with `base` and `ui` (parent base) recorded; ui's packages
/// have an epoch, a `+`, a `~` and an architecture.
fn project_with_images() -> (TestProject, String, String) {
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let hex = |c: char| c.to_string().repeat(64).parse().unwrap();
    let image = |parent: &str, packages: &[(&str, &str)]| NewImage {
        inputs: hex('a'),
        parent: parent.parse().unwrap(),
        target: "local".into(),
        artifact: Artifact::Local {
            path: "/images/x.qcow2".into(),
            sha256: hex('b'),
        },
        repositories: BTreeMap::from([
            (
                "deb.debian.org_debian_dists_bookworm_InRelease".into(),
                hex('c'),
            ),
            (
                "deb.debian.org_debian-security_dists_bookworm-security_InRelease".into(),
                hex('d'),
            ),
        ]),
        packages: packages
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        checks: Vec::new(),
        builder: None,
        size: None,
    };
    let base = registry
        .record(
            "base",
            image("base-image:debian-12-test", &[("bash", "5.2.15-2+b13")]),
        )
        .unwrap();
    let ui = registry
        .record(
            "ui",
            image(
                &format!("base@{}", base.version),
                &[
                    ("bsdutils", "1:2.38.1-5+deb12u3"),
                    ("ca-certificates", "20250419~deb12u2"),
                    ("libc6:amd64", "2.36-9+deb12u10"),
                    ("nginx", "1.22.1-9+deb12u3"),
                ],
            ),
        )
        .unwrap();
    (project, base.version.to_string(), ui.version.to_string())
}

/// The folder of the Python that has the SBOM validators (`pyspdxtools`,
/// and the CycloneDX library beside it).
fn validators() -> Option<PathBuf> {
    folder_with(
        &["pyspdxtools", "python3"],
        "OXBAKE_REQUIRE_SBOM_VALIDATORS",
        "documents checked by this test only",
    )
}

const CYCLONEDX_STRICT: &str = "import sys\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
from cyclonedx.schema import SchemaVersion\n\
e = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
print(e if e else 'valid')\n\
sys.exit(1 if e else 0)\n";

fn validate(dir: &Path, format: &str, file: &Path) -> (bool, String) {
    let out = match format {
        "cyclonedx" => Command::new(dir.join("python3"))
            .args(["-c", CYCLONEDX_STRICT])
            .arg(file)
            .output(),
        _ => Command::new(dir.join("pyspdxtools"))
            .arg("-i")
            .arg(file)
            .output(),
    }
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sbom_documents_pass_independent_validators() {
    let (project, base, ui) = project_with_images();
    let checker = validators();
    let temp = tempfile::tempdir().unwrap();
    for format in ["cyclonedx", "spdx"] {
        let run = project.oxbake(&["sbom", &format!("ui@{ui}"), "--format", format]);
        assert_eq!(run.code(), 0, "{}", run.stderr());
        // The same record gives the same document; --json gives it too.
        let again = project.oxbake(&["sbom", "ui", "--format", format, "--json"]);
        let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
        let json: Value = serde_json::from_str(&again.stdout()).unwrap();
        assert_eq!(doc, json);
        let purls: Vec<String> = match format {
            "cyclonedx" => {
                assert_eq!(doc["specVersion"], "1.5");
                let image = &doc["metadata"]["component"];
                assert_eq!(image["name"], "ui");
                assert_eq!(image["version"], ui.as_str());
                let parent = &image["pedigree"]["ancestors"][0];
                assert_eq!(
                    (&parent["name"], &parent["version"]),
                    (&"base".into(), &base.as_str().into())
                );
                let repos = doc["metadata"]["properties"].to_string();
                assert!(
                    repos.contains("bookworm-security_InRelease sha256:dddd"),
                    "{repos}"
                );
                doc["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["purl"].as_str().unwrap().to_owned())
                    .collect()
            }
            _ => {
                assert_eq!(doc["spdxVersion"], "SPDX-2.3");
                let rels = doc["relationships"].to_string();
                assert!(
                    rels.contains("DESCENDANT_OF") && rels.matches("CONTAINS").count() == 4,
                    "{rels}"
                );
                doc["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
                    .map(str::to_owned)
                    .collect()
            }
        };
        assert_eq!(
            purls,
            [
                "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u3?distro=bookworm",
                "pkg:deb/debian/ca-certificates@20250419%7Edeb12u2?distro=bookworm",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=bookworm",
                "pkg:deb/debian/nginx@1.22.1-9%2Bdeb12u3?distro=bookworm",
            ]
        );
        let Some(dir) = &checker else { continue };
        let file = temp.path().join(format!("{format}.json"));
        std::fs::write(&file, run.stdout()).unwrap();
        let (valid, said) = validate(dir, format, &file);
        assert!(valid, "{format}: {said}");
        // The validator can say no: a document broken on purpose fails.
        let broken = run
            .stdout()
            .replace("\"SPDXRef-Package-1\"", "\"SPDXRef Package 1\"")
            .replace("\"type\": \"library\"", "\"type\": \"librar\"");
        std::fs::write(&file, broken).unwrap();
        let (valid, said) = validate(dir, format, &file);
        assert!(!valid, "{format}: a broken document passed: {said}");
    }
}

#[test]
fn sbom_refuses_what_is_not_there() {
    let (project, _, ui) = project_with_images();
    let missing = project.oxbake(&["sbom", "db"]);
    assert_ne!(missing.code(), 0);
    assert!(missing.stderr().contains("db"), "{}", missing.stderr());
    let format = project.oxbake(&["sbom", &format!("ui@{ui}"), "--format", "xml"]);
    assert_eq!(format.code(), 2, "{}", format.stderr());
    assert!(format.stdout().is_empty());
}

/// Each shell loads the script; bash's completion function, asked for
/// `oxbake sb`, offers `sbom`.
#[test]
fn completions_load_in_their_shells() {
    let project = TestProject::copy();
    let temp = tempfile::tempdir().unwrap();
    for (shell, load) in [
        (
            "bash",
            "source \"$1\" && COMP_WORDS=(oxbake sb) COMP_CWORD=1 COMP_LINE='oxbake sb' COMP_POINT=9 \
             && _oxbake oxbake sb oxbake && printf '%s\\n' \"${COMPREPLY[@]}\"",
        ),
        ("zsh", "zsh -n \"$1\" && echo parsed"),
        ("fish", "fish --no-execute \"$1\" && echo parsed"),
    ] {
        let run = project.oxbake(&["completions", shell]);
        assert_eq!(run.code(), 0, "{}", run.stderr());
        let file = temp.path().join(shell);
        std::fs::write(&file, run.stdout()).unwrap();
        let Ok(out) = Command::new("bash")
            .args(["-c", load, "load"])
            .arg(&file)
            .output()
        else {
            continue;
        };
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        if shell != "bash" && !has(shell) {
            eprintln!("completions: {shell} not installed; its script not loaded");
            continue;
        }
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = if shell == "bash" { "sbom" } else { "parsed" };
        assert!(said.lines().any(|l| l == want), "{shell}: {said}");
    }
}

fn has(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(program).is_file())
}

/// groff formats the page without a warning, and it names every command.
#[test]
fn the_manual_page_formats() {
    let project = TestProject::copy();
    let run = project.oxbake(&["man"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let page = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(page.path(), run.stdout()).unwrap();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(page.path())
        .output()
        .expect("groff (groff-base) is installed");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warned");
    for command in ["build", "deploy", "sbom", "completions"] {
        assert!(run.stdout().contains(command), "{command}");
    }
}

/// The YAML inventory says what the JSON one says, read by a YAML parser
/// (PyYAML, which Ansible reads inventories with), whatever the paths hold:
/// quotes, `: `, `#`, a line break, non-ASCII.
#[test]
fn the_yaml_inventory_reads_as_its_json() {
    use oxbake::pipeline::deploy::deployed::{Access, DeployedVm};
    use oxbake::report::inventory;
    use oxbake::target::VmHandle;

    let Some(dir) = validators() else { return };
    let odd = "/srv/o\"x: b#ake\n'é";
    let access = Access {
        user: "ops".into(),
        key_file: format!("{odd}/deploy/lab.key").into(),
        known_hosts: format!("{odd}/known_hosts/lab").into(),
    };
    let vm = |name: &str, role: &str, port: u16, running: bool| DeployedVm {
        name: name.into(),
        handle: VmHandle {
            name: name.into(),
            id: name.into(),
        },
        role: role.into(),
        version: Some("2026.12.06.1".into()),
        slot: Some(format!("lab-{role}-1")),
        address: Some("10.99.0.20".parse().unwrap()),
        node: None,
        running,
        ssh: running.then(|| format!("127.0.0.1:{port}").parse().unwrap()),
        created: None,
    };
    let vms = [
        vm("lab-ui-1", "ui", 40022, true),
        vm("lab-my-db-1", "my-db", 40023, true),
        vm("lab-backend-1", "backend", 0, false),
    ];
    let yaml = inventory::yaml("lab", &vms, &access);
    let json = inventory::json("lab", &vms, &access);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &yaml).unwrap();
    let read = Command::new(dir.join("python3"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    assert_success(&read, "ansible-inventory --list");
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read["all"]["vars"], json["all"]["vars"], "{yaml}");
    assert_eq!(
        read["all"]["vars"]["ansible_ssh_private_key_file"],
        format!("{odd}/deploy/lab.key")
    );
    // A group name takes no `-`; a stopped VM is not a host.
    assert_eq!(json["my_db"]["hosts"], serde_json::json!(["lab-my-db-1"]));
    assert!(json["backend"].is_null(), "{json}");
    for (group, hosts) in read["all"]["children"].as_object().unwrap() {
        for (host, vars) in hosts["hosts"].as_object().unwrap() {
            assert_eq!(vars, &json["_meta"]["hostvars"][host], "{group}/{host}");
        }
    }
    assert_eq!(read["all"]["children"].as_object().unwrap().len(), 2);
}

/// `oxbake init` makes a project that `check` accepts, and refuses to write
/// over anything: a project, or a folder holding a file it would write,
/// is left as it was (exit 2). A .gitignore gains `.oxbake/`, a README stays.
#[test]
fn init_makes_a_project_and_writes_over_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("My Images");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".gitignore"), "target").unwrap();
    std::fs::write(dir.join("README.md"), "mine\n").unwrap();
    let made = oxbake_in(temp.path(), &["init", "My Images"]);
    assert_eq!(made.0, 0, "{}", made.2);
    assert!(made.1.contains("project `my-images`"), "{}", made.1);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read(".gitignore"), "target\n.oxbake/\n");
    assert_eq!(read("README.md"), "mine\n");
    assert!(read("oxbake.toml").contains("name = \"my-images\""));
    let check = oxbake_in(&dir, &["check"]);
    assert_eq!(check.0, 0, "{}", check.2);

    // Again: refused, nothing changed.
    let before = snapshot(&dir);
    let again = oxbake_in(temp.path(), &["init", "My Images", "--json"]);
    assert_eq!(again.0, 2, "{}", again.2);
    assert!(
        again.2.contains("is an oxbake project already"),
        "{}",
        again.2
    );
    let doc: Value = serde_json::from_str(&again.1).unwrap();
    assert!(doc["error"].is_object(), "{doc}");
    assert_eq!(snapshot(&dir), before);

    // A recipe of the same name elsewhere: refused before any file is made.
    let other = temp.path().join("other");
    std::fs::create_dir_all(other.join("recipes")).unwrap();
    std::fs::write(other.join("recipes/base.toml"), "mine").unwrap();
    let taken = oxbake_in(&other, &["init"]);
    assert_eq!(taken.0, 2, "{}", taken.2);
    assert!(
        taken.2.contains("writes no file over another"),
        "{}",
        taken.2
    );
    assert_eq!(snapshot(&other).len(), 1, "{:?}", snapshot(&other));
}

/// Every file under `dir` and its text.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// oxbake run in `cwd`: (exit code, stdout, stderr).
fn oxbake_in(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `oxbake init` makes bakes: `oxbake build base` in a new project
/// (from the base image the other tests use), and the image's SBOM passes
/// the validators. Its packages (curl, less, ca-certificates) are among
/// those the shared fixture's base fetched through the package cache, so
/// this bake, in another project, fetches none from Debian's archive: the
/// cache serves every project of the machine (and the template holds no
/// proxy setting: the build's own offline inspection proves it absent).
#[cfg(feature = "e2e")]
#[test]
fn an_initialized_project_bakes_with_its_packages_from_the_cache() {
    let fixture = crate::support::e2e::baked();
    let first = apt_line(&fixture.build.stderr());
    let _vms = crate::support::e2e::vm_lock();
    let temp = tempfile::tempdir().unwrap();
    let made = oxbake_in(temp.path(), &["init", "fresh"]);
    assert_eq!(made.0, 0, "{}", made.2);
    let dir = temp.path().join("fresh");
    // The KVM probe costs 15 s per process and always fails here.
    let config = std::fs::read_to_string(dir.join("oxbake.toml")).unwrap();
    std::fs::write(
        dir.join("oxbake.toml"),
        config.replace("accel = \"auto\"", "accel = \"tcg\""),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let build = oxbake_in(&dir, &["build", "base"]);
    assert_eq!(build.0, 0, "{}", build.2);
    let second = apt_line(&build.2);
    crate::support::figures::figure(format!(
        "init: the new project's base baked in {:.0} s; the fixture's base: {first}; the new \
         project's: {second}",
        started.elapsed().as_secs_f64()
    ));
    assert!(second.contains("apt: 0 B from outside"), "{second}");
    assert!(!second.contains(", 0 B from cache (indices"), "{second}");
    let Some(checker) = validators() else { return };
    let sbom = oxbake_in(&dir, &["sbom", "base"]);
    assert_eq!(sbom.0, 0, "{}", sbom.2);
    let file = temp.path().join("base.cdx.json");
    std::fs::write(&file, &sbom.1).unwrap();
    let (valid, said) = validate(&checker, "cyclonedx", &file);
    assert!(valid, "{said}");
    assert!(
        sbom.1.contains("pkg:deb/debian/curl@"),
        "no curl in the SBOM"
    );
}

/// The `base: apt: …` line of a build's output.
#[cfg(feature = "e2e")]
fn apt_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("base: apt: "))
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| panic!("no apt figures:\n{stderr}"))
}

/// Reads a TOML file and validates it against a JSON Schema (draft 7) with
/// the `jsonschema` library; prints `valid` or the first error.
const TOML_AGAINST_SCHEMA: &str = r#"
import json, sys, tomllib, datetime, jsonschema
def plain(x):
    if isinstance(x, dict): return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list): return [plain(v) for v in x]
    if isinstance(x, (datetime.date, datetime.time)): return x.isoformat()
    return x
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
doc = plain(tomllib.load(open(sys.argv[2], 'rb')))
errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
print(errors[0].message if errors else 'valid')
"#;

/// The schemas say what `oxbake check` says: for the shipped files and for
/// each edit below (unknown keys at every level, a bad `kind`, a wrong
/// type, a missing key), a schema validator accepts a file exactly when
/// `check` does.
#[test]
fn the_schemas_agree_with_check() {
    let Some(dir) = validators() else { return };
    let temp = tempfile::tempdir().unwrap();
    let made = oxbake_in(temp.path(), &["init", "p"]);
    assert_eq!(made.0, 0, "{}", made.2);
    let root = temp.path().join("p");
    let schemas: Vec<PathBuf> = ["recipe", "config"]
        .iter()
        .map(|of| {
            let out = oxbake_in(&root, &["schema", of]);
            assert_eq!(out.0, 0, "{}", out.2);
            let file = temp.path().join(format!("{of}.json"));
            std::fs::write(&file, out.1).unwrap();
            file
        })
        .collect();
    let recipe = std::fs::read_to_string(root.join("recipes/base.toml")).unwrap();
    let config = std::fs::read_to_string(root.join("oxbake.toml")).unwrap();
    let step = "[[step]]\nname = \"common packages\"\nkind = \"apt\"\n";
    let recipes: Vec<(&str, String)> = vec![
        ("as made", recipe.clone()),
        ("unknown top key", format!("colour = \"red\"\n{recipe}")),
        (
            "unknown step kind",
            recipe.replace(step, "[[step]]\nname = \"x\"\nkind = \"zypper\"\n"),
        ),
        (
            "a key of another kind",
            recipe.replace(step, &format!("{step}run = \"true\"\n")),
        ),
        (
            "packages not a list",
            recipe.replace(
                "packages = [\"ca-certificates\", \"curl\", \"less\"]",
                "packages = \"curl\"",
            ),
        ),
        (
            "a check without run",
            recipe.replace("run = \"curl --version\"\n", ""),
        ),
        (
            "unknown check key",
            recipe.replace(
                "name = \"curl runs\"\n",
                "name = \"curl runs\"\nretries = 3\n",
            ),
        ),
        (
            "unknown deploy key",
            format!("{recipe}\n[deploy]\nreboot = true\n"),
        ),
        (
            "a deploy",
            format!("{recipe}\n[deploy]\ncommands = [\"true\"]\n"),
        ),
    ];
    let configs: Vec<(&str, String)> = vec![
        ("as made", config.clone()),
        ("unknown table", format!("{config}\n[colours]\nred = 1\n")),
        (
            "unknown local key",
            config.replace("accel = \"auto\"", "accel = \"auto\"\ncpus = 4"),
        ),
        (
            "accel not a mode",
            config.replace("accel = \"auto\"", "accel = \"fast\""),
        ),
        (
            "cores a string",
            config.replace("cores = 2", "cores = \"two\""),
        ),
        ("no project name", config.replace("name = \"p\"\n", "")),
    ];
    let the_shipped: Vec<(String, PathBuf)> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes"))
            .unwrap()
            .flatten()
            .map(|e| (e.path().display().to_string(), e.path()))
            .collect();
    for (what, schema, rel, text) in recipes
        .iter()
        .map(|(w, t)| (w, &schemas[0], "recipes/base.toml", t))
        .chain(
            configs
                .iter()
                .map(|(w, t)| (w, &schemas[1], "oxbake.toml", t)),
        )
    {
        let file = root.join(rel);
        let before = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text).unwrap();
        let check = oxbake_in(&root, &["check"]);
        let said = schema_says(&dir, schema, &file);
        std::fs::write(&file, before).unwrap();
        assert_eq!(
            check.0 == 0,
            said == "valid",
            "{rel}, {what}: check exit {} ({}), schema: {said}",
            check.0,
            check.2.trim()
        );
    }
    for (name, path) in the_shipped {
        assert_eq!(schema_says(&dir, &schemas[0], &path), "valid", "{name}");
    }
    let shipped_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("oxbake.toml");
    assert_eq!(schema_says(&dir, &schemas[1], &shipped_config), "valid");
}

fn schema_says(dir: &Path, schema: &Path, file: &Path) -> String {
    let out = Command::new(dir.join("python3"))
        .args(["-c", TOML_AGAINST_SCHEMA])
        .arg(schema)
        .arg(file)
        .output()
        .unwrap();
    assert_success(&out, "the validator").trim().to_owned()
}
