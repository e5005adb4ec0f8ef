//! `oxbake inputs`: the same inputs give the same hash anywhere; any change
//! to an input gives a new one.

use crate::support::project::TestProject;

fn hash(p: &TestProject, role: &str) -> String {
    let run = p.oxbake(&["inputs", role, "--json"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).expect("JSON");
    doc["hash"].as_str().expect("hash").to_owned()
}

#[test]
fn same_hash_twice_and_in_another_folder() {
    let a = TestProject::copy();
    let b = TestProject::copy();
    let first = hash(&a, "ui");
    assert_eq!(first.len(), 64);
    assert_eq!(first, hash(&a, "ui"));
    assert_eq!(first, hash(&b, "ui"));
}

#[test]
fn one_byte_of_a_template_or_of_the_parent_recipe_changes_it() {
    let p = TestProject::copy();
    let before = hash(&p, "ui");
    let nginx = p.read("templates/nginx/nginx.conf.j2");
    p.write(
        "templates/nginx/nginx.conf.j2",
        &nginx.replacen("sendfile on", "sendfile of", 1),
    );
    let after_template = hash(&p, "ui");
    assert_ne!(before, after_template);
    p.write("templates/nginx/nginx.conf.j2", &nginx);
    assert_eq!(
        before,
        hash(&p, "ui"),
        "restoring the byte restores the hash"
    );

    let base = p.read("recipes/base.toml");
    p.write(
        "recipes/base.toml",
        &base.replacen("ssh_max_auth_tries = 3", "ssh_max_auth_tries = 4", 1),
    );
    assert_ne!(before, hash(&p, "ui"), "the parent's recipe is an input");
}

#[test]
fn formatting_comments_and_table_order_do_not_count() {
    let p = TestProject::copy();
    let before = hash(&p, "ui");
    let ui = p.read("recipes/ui.toml");
    // Move [vars] below the steps, add comments and blank lines.
    let (head, rest) = ui.split_once("[vars]").unwrap();
    let (vars, steps) = rest.split_once("[[step]]").unwrap();
    let reordered = format!("# a comment\n{head}\n\n[[step]]{steps}\n[vars]   # moved\n{vars}");
    p.write("recipes/ui.toml", &reordered);
    assert_eq!(before, hash(&p, "ui"));
}

#[test]
fn deploy_templates_and_unrelated_roles_do_not_count() {
    let p = TestProject::copy();
    let before = hash(&p, "ui");
    p.write(
        "templates/nginx/openexchange_ui.conf.j2",
        "# changed\n{{ env.server_name }}\n",
    );
    p.write("templates/postfix/main.cf.j2", "# changed\n");
    assert_eq!(before, hash(&p, "ui"));
}

#[test]
fn table_lists_the_inputs() {
    let p = TestProject::copy();
    let run = p.oxbake(&["inputs", "ui"]);
    let out = run.stdout();
    assert!(out.starts_with("ui "), "{out}");
    for input in ["recipes/ui.toml", "templates/nginx/nginx.conf.j2", "base@"] {
        assert!(out.contains(input), "{input} missing from:\n{out}");
    }
}

/// A root recipe's `base` is an input: the role and every role built from
/// it get a new hash, and `oxbake inputs` names the release.
#[test]
fn the_base_release_is_an_input_and_is_listed() {
    let p = TestProject::copy();
    let (base_before, ui_before) = (hash(&p, "base"), hash(&p, "ui"));
    let run = p.oxbake(&["inputs", "ui"]);
    assert!(
        run.stdout().contains("\nbuilds on Debian bookworm\n"),
        "{}",
        run.stdout()
    );
    let recipe = p.read("recipes/base.toml");
    let role = "role = \"base\"\n";
    p.write(
        "recipes/base.toml",
        &recipe.replacen(role, &format!("{role}base = \"trixie\"\n"), 1),
    );
    assert_ne!(base_before, hash(&p, "base"));
    assert_ne!(
        ui_before,
        hash(&p, "ui"),
        "a child builds on its parent's release"
    );
    let run = p.oxbake(&["inputs", "base", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).expect("JSON");
    assert_eq!(doc["suite"], "trixie");
    let base = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "base")
        .expect("a base input");
    let name = base["name"].as_str().unwrap();
    assert!(name.starts_with("local:debian-13-"), "{name}");
    let run = p.oxbake(&["inputs", "ui"]);
    assert!(
        run.stdout().contains("\nbuilds on Debian trixie\n"),
        "{}",
        run.stdout()
    );
    p.write("recipes/base.toml", &recipe);
    assert_eq!(
        base_before,
        hash(&p, "base"),
        "without `base`, bookworm as before"
    );
}
