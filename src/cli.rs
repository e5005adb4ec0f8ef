//! The command line (clap). No logic here: `cmd/` does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "oxbake",
    version,
    about = "Bake versioned Proxmox VE templates per role, then clone them"
)]
pub struct Cli {
    /// The project folder (default: the nearest folder upwards with oxbake.toml).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new project in DIR (default: here): oxbake.toml with the local
    /// target, a base recipe with checks, .gitignore. Writes over nothing.
    Init {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Validate oxbake.toml, every recipe and every template; contacts nothing.
    Check,
    /// Bake roles into templates, parents first (all roles when none named).
    Build {
        roles: Vec<String>,
        /// The target to build on (default: the project's default target).
        #[arg(long)]
        target: Option<String>,
        /// Skip a role whose inputs already have an image.
        #[arg(long)]
        if_changed: bool,
        /// Bake the roles' ancestors again even when up to date (picks up
        /// package updates).
        #[arg(long)]
        refresh: bool,
        /// Leave a failed builder VM running and say how to reach it.
        #[arg(long)]
        keep_on_failure: bool,
        /// How many roles are baked at once, each on its own builder VM
        /// (default: as many as the target allows: local, free memory and
        /// cores; proxmox, the target's `build_jobs`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
    },
    /// List the images in the registry, newest first.
    Ls {
        /// Only this role's images.
        role: Option<String>,
        /// Also compare the registry with this target's templates.
        #[arg(long)]
        target: Option<String>,
    },
    /// Show one image: ROLE (its newest version) or ROLE@VERSION.
    Show {
        #[arg(value_name = "ROLE[@VERSION]")]
        image: String,
    },
    /// Read a local image's template file offline, without booting it, and
    /// list every trace of its build (exit 1 if there is one).
    Inspect {
        #[arg(value_name = "ROLE[@VERSION]")]
        image: String,
    },
    /// Remove builder and smoke VMs whose run has ended (crashed or killed
    /// builds); deployed VMs are never touched.
    Gc {
        #[arg(long)]
        target: Option<String>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make the base image for the local target.
    #[command(subcommand)]
    Base(BaseCommand),
    /// Secrets in an Ansible-compatible vault file (`[secrets]` in oxbake.toml).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Create, replace and destroy an environment's VMs so they run the
    /// versions its channel points at.
    Deploy {
        env: String,
        /// Only show what would be created, replaced, kept and destroyed.
        #[arg(long)]
        plan: bool,
        /// How many VMs of a wave are made at once (default: as many as
        /// the target allows: local, free memory and cores; proxmox, the
        /// target's `deploy_jobs`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
    },
    /// Destroy every VM of an environment, but those of roles that keep data
    /// (a backup repository) unless --all.
    Destroy {
        env: String,
        /// Also the VMs of roles that keep data, and their data.
        #[arg(long)]
        all: bool,
    },
    /// Print a role's inputs hash and the inputs it covers.
    Inputs {
        role: String,
        /// The target whose base image roles without a parent start from.
        #[arg(long)]
        target: Option<String>,
    },
    /// Point a channel at an image, through the gates (checks passed, not
    /// revoked, in the previous channel, a smoke test of a fresh clone).
    Promote {
        role: String,
        version: String,
        /// The channel (one of `[project].channels`).
        #[arg(long = "to", value_name = "CHANNEL")]
        channel: String,
        /// Skip the previous-channel gate (needs --reason).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why; recorded in the channel history (not blank).
        #[arg(long, value_parser = reason)]
        reason: Option<String>,
        /// The target the template lives on (default: the one the image records).
        #[arg(long)]
        target: Option<String>,
    },
    /// Ship an image baked on the local target to a Proxmox VE target
    /// through its API alone (upload, import into a VM, convert to a
    /// template) and record the copy as a second place of the same version.
    Publish {
        /// The image: ROLE@VERSION (ROLE alone: its newest version).
        #[arg(value_name = "ROLE@VERSION")]
        image: String,
        /// The proxmox target to ship it to (a name in oxbake.toml).
        #[arg(long)]
        target: String,
    },
    /// Return a channel to the version it had before its last change.
    Rollback {
        role: String,
        #[arg(long)]
        channel: String,
        /// Why; recorded in the channel history (not blank).
        #[arg(long, value_parser = reason)]
        reason: Option<String>,
        /// The target the templates live on (default: the project's default).
        #[arg(long)]
        target: Option<String>,
    },
    /// Mark an image revoked (no promotion, no deployment) and list the
    /// deployed VMs built from it.
    Revoke {
        role: String,
        version: String,
        /// Why; recorded in the image and the channel history (not blank).
        #[arg(long, value_parser = reason)]
        reason: String,
        /// The target to look for deployed VMs on (default: the image's).
        #[arg(long)]
        target: Option<String>,
    },
    /// Remove old images: keep the newest `[retention].keep` per role and any
    /// image a channel, a deployed VM or a kept child needs.
    Prune {
        /// Only list what would go and why the rest stays.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        target: Option<String>,
    },
    /// Packages added, removed and changed between two versions of a role.
    Diff {
        role: String,
        v1: String,
        v2: String,
    },
    /// An environment's deployed VMs as an Ansible inventory (YAML; with
    /// --json, what `ansible-inventory --list` prints).
    Inventory { env: String },
    /// Each VM of an environment: role, version, address, node, state, and
    /// its health (cloud-init and the role's checks, run now). Exit 1 when
    /// one is not healthy.
    Status { env: String },
    /// An environment's database backups (the db role): the snapshots in its
    /// repository, oldest first; with --now, one taken first (waits for it).
    Backup {
        env: String,
        #[arg(long)]
        now: bool,
    },
    /// Restore an environment's database (the db role) from a snapshot (an ID
    /// that `oxbake backup` lists, or `latest`): a new cluster from it, every
    /// db VM's data replaced. Refused while the cluster holds tables of its
    /// own, unless --force with --reason (both recorded).
    Restore {
        env: String,
        #[arg(long = "from", value_name = "SNAPSHOT")]
        from: String,
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the cluster's data may be overwritten (with --force).
        #[arg(long, requires = "force")]
        reason: Option<String>,
    },
    /// Log in to a VM of an environment (by name or slot, `lab-ui-1`) with
    /// OpenSSH, accepting only the host key oxbake pinned; after `--`, a
    /// command to run there instead.
    Ssh {
        env: String,
        vm: String,
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// An image's software bill of materials as one JSON document: its
    /// packages as Debian package URLs, the repositories its build saw, its
    /// parent. ROLE alone: its newest version.
    Sbom {
        #[arg(value_name = "ROLE[@VERSION]")]
        image: String,
        #[arg(long, value_parser = ["cyclonedx", "spdx"], default_value = "cyclonedx")]
        format: String,
    },
    /// The JSON Schema of a recipe or of oxbake.toml, for TOML editors
    /// (`#:schema` lines).
    Schema {
        #[arg(value_parser = ["recipe", "config"])]
        of: String,
    },
    /// The completion script of a shell for oxbake, on stdout (bash: put it
    /// in ~/.local/share/bash-completion/completions/oxbake).
    Completions {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// oxbake's manual page (roff), on stdout: `oxbake man > oxbake.1`.
    Man,
    /// For every role, ancestors first: rebuild what changed (inputs, parent,
    /// package repositories), promote to the first channel, prune, report.
    Nightly {
        #[arg(long)]
        target: Option<String>,
        /// Rebuild every role, changed or not (picks up package updates).
        #[arg(long)]
        refresh: bool,
        /// Only decide and report; build, promote and prune nothing.
        #[arg(long)]
        plan: bool,
        /// How many roles are baked at once, each on its own builder VM
        /// (default: as many as the target allows: local, free memory and
        /// cores; proxmox, the target's `build_jobs`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
    },
}

/// The Debian suites `--suite` takes (the core's `Suite` names them too).
const SUITES: [&str; 2] = ["bookworm", "trixie"];

#[derive(Debug, Subcommand)]
pub enum BaseCommand {
    /// Build a Debian base image from Debian's archive (mmdebstrap; needs
    /// root). Reuses the cached image when its package list is unchanged.
    Bootstrap {
        /// Build again even when a cached image matches.
        #[arg(long)]
        refresh: bool,
        /// The Debian release: bookworm (12) or trixie (13). Each suite's
        /// base is kept beside the others'.
        #[arg(long, value_name = "SUITE", default_value = "bookworm", value_parser = SUITES)]
        suite: String,
    },
    /// Take a ready-made image (a Debian cloud image) as the base of a suite.
    Import {
        #[arg(value_name = "FILE-or-URL")]
        source: String,
        /// The image's expected SHA-256; a mismatch keeps nothing.
        #[arg(long, value_name = "HEX")]
        sha256: String,
        /// Refuse a source longer than this: bytes, or with a binary suffix
        /// (K, M, G, T; `KiB` … `TiB` alike).
        #[arg(long, value_name = "SIZE", default_value = "64GiB", value_parser = size)]
        max_size: u64,
        /// The Debian release the image is (nothing in it is read to tell):
        /// bookworm (12) or trixie (13).
        #[arg(long, value_name = "SUITE", default_value = "bookworm", value_parser = SUITES)]
        suite: String,
    },
}

/// The vault's password comes from `password_file` in `[secrets]`, else from
/// `$OXBAKE_VAULT_PASSWORD` (or the variable `password_env` names).
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Print the decrypted vault (with --json: its mapping as one object).
    View {
        /// A vault file instead of the one oxbake.toml names.
        file: Option<PathBuf>,
    },
    /// Encrypt a plaintext YAML file (a flat `name: value` mapping) in place.
    Encrypt {
        file: PathBuf,
        /// Write format 1.2 with this vault id label.
        #[arg(long, value_name = "LABEL")]
        vault_id: Option<String>,
    },
    /// Edit the decrypted vault with $EDITOR (default `vi`); a changed text
    /// is encrypted back.
    Edit {
        /// A vault file instead of the one oxbake.toml names.
        file: Option<PathBuf>,
    },
}

/// A `--reason`: recorded for whoever reads the history later, so a blank
/// one is refused (exit 2) before anything changes.
fn reason(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a reason must not be empty or blank: it is recorded in the history".into());
    }
    Ok(text.to_owned())
}

/// A size: bytes, or a number with a binary suffix (`512M`, `64GiB`).
fn size(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &text[digits.len()..] {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        unit => return Err(format!("unknown unit `{unit}` (use K, M, G or T)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 512M, 64GiB)"))?;
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}`: a size must be above 0 and below 16 EiB"))
}
