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

# What CI runs.
ci: lint test
