//! What the fuzz targets do with one input, shared by the cargo-fuzz
//! targets (fuzz_targets/) and the stable smoke fuzzer of the integration
//! tests (tests/corpus/fuzz_smoke.rs). A panic is the failure: every input,
//! however broken, must come back as `Ok` or as errors that name a place.

use std::path::Path;

use oxbake::registry::{Channels, ImageRecord};

/// Bytes as a recipe: parse errors point at a line and column of the file.
pub fn recipe_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("recipes/fuzz.toml");
    if let Err(problems) = oxbake::recipe::load::parse(path, text) {
        assert!(!problems.is_empty(), "an error with no problem in it");
        for d in problems.iter() {
            assert!(d.line >= 1 && d.column >= 1, "{d}");
            assert!(!d.message.is_empty(), "{d}");
        }
    }
}

/// Bytes as an image record and as channels.toml. What parses must encode
/// and parse back to the same value (the registry rewrites these files).
pub fn registry_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let label = Path::new("images/ui/2026.01.02.1.toml");
    match ImageRecord::parse(label, text) {
        Ok(record) => {
            let encoded = toml::to_string(&record).expect("a parsed record encodes");
            let again = ImageRecord::parse(label, &encoded).expect("an encoded record parses");
            assert_eq!(record, again, "record does not survive a round trip");
        }
        Err(e) => assert!(e.to_string().starts_with("images/ui/"), "{e}"),
    }
    let label = Path::new("images/channels.toml");
    match Channels::parse(label, text) {
        Ok(channels) => {
            let encoded = toml::to_string(&channels).expect("parsed channels encode");
            let again = Channels::parse(label, &encoded).expect("encoded channels parse");
            assert_eq!(channels, again, "channels do not survive a round trip");
        }
        Err(e) => assert!(e.to_string().starts_with("images/channels.toml:"), "{e}"),
    }
}
