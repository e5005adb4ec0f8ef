# Everyday commands. `just --list` shows them.

# Build the release binary.
build:
    cargo build --release

# Every test, end-to-end included (boots QEMU guests).
test:
    scripts/test

# Unit and integration tests without the QEMU end-to-end tests.
test-fast:
    cargo test

# Formatting and clippy, as CI runs them.
lint:
    cargo fmt --check
    cargo clippy --all-targets --all-features -- -D warnings

# Validate the project's recipes and templates.
check:
    cargo run --quiet -- check

# The HA end-to-end test alone: `prod` (2 lb, 2 ui, 2 backend, 3 db)
# deployed, rolled under client load, lb and db VMs killed. About 30 min
# under TCG; as root (a network namespace joins prod's segment). CI runs it
# with every other test.
test-ha:
    cargo test --all-features --test integration -- ha_e2e --nocapture

# What CI runs.
ci: lint test
