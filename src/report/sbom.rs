//! `oxbake sbom ROLE@VERSION`: an image's package manifest as a software
//! bill of materials, CycloneDX 1.5 or SPDX 2.3 (JSON). Built from the
//! registry's record alone: the packages dpkg listed in the builder, the
//! package repositories the build saw (their `InRelease` digests), the parent
//! image. The documents are the same for the same record (serial number and
//! namespace derive from the record), so two runs can be compared.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::registry::{Artifact, ImageRecord, Parent};
use crate::suite::Suite;

/// The document formats `oxbake sbom --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    Cyclonedx,
    Spdx,
}

pub fn document(record: &ImageRecord, format: SbomFormat) -> Value {
    match format {
        SbomFormat::Cyclonedx => cyclonedx(record),
        SbomFormat::Spdx => spdx(record),
    }
}

/// A Debian package's URL (purl-spec's `deb` type): name and version
/// percent-encoded, `arch` when the name carries one (`libc6:amd64`),
/// `distro` the Debian suite the build installed from.
pub fn deb_purl(name: &str, version: &str, suite: Option<&str>) -> String {
    let (name, arch) = match name.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (name, None),
    };
    let mut purl = format!("pkg:deb/debian/{}@{}", encode(name), encode(version));
    let qualifiers: Vec<String> = [("arch", arch), ("distro", suite)]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| format!("{key}={}", encode(v))))
        .collect();
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

/// Percent-encodes all but purl's unreserved characters (an epoch's `:`
/// and a version's `+` and `~` included).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The Debian suite of the build: the one of the `debian` archive's
/// `dists/SUITE/InRelease` (apt's list names, `deb.debian.org_debian_dists_
/// bookworm_InRelease`), not of `-updates` or `-security`; when the build
/// read no list (a role without an apt step), the release its `base-files`
/// belongs to.
pub fn debian_suite(record: &ImageRecord) -> Option<String> {
    suite_of_lists(record.repositories.keys().map(String::as_str))
        .or_else(|| suite_of_base_files(record.packages.get("base-files")?))
}

/// `base-files`' major version is the Debian release's (`12.4+deb12u15`:
/// Debian 12, bookworm); a release oxbake does not know gives none.
fn suite_of_base_files(version: &str) -> Option<String> {
    let major: u32 = version.split(['.', '+', '~']).next()?.parse().ok()?;
    Suite::ALL
        .into_iter()
        .find(|suite| suite.version() == major)
        .map(|suite| suite.name().to_owned())
}

/// The suite of the first list of the `debian` archive's release file.
fn suite_of_lists<'a>(mut lists: impl Iterator<Item = &'a str>) -> Option<String> {
    lists.find_map(|list| {
        let (_, rest) = list.split_once("_debian_dists_")?;
        let suite = rest.strip_suffix("_InRelease")?;
        (!suite.is_empty() && suite.bytes().all(|b| b.is_ascii_lowercase())).then(|| suite.into())
    })
}

fn packages(record: &ImageRecord) -> Vec<(&str, &str, String)> {
    let suite = debian_suite(record);
    record
        .packages
        .iter()
        .map(|(name, version)| {
            let purl = deb_purl(name, version, suite.as_deref());
            (name.as_str(), version.as_str(), purl)
        })
        .collect()
}

/// 16 bytes of the digest of what names the record, as an RFC 4122 UUID
/// (version and variant bits set as for a random one).
fn uuid(record: &ImageRecord) -> String {
    let digest = Sha256::digest(format!("{}\n{}", record.id(), record.inputs.as_str()));
    let mut b: [u8; 16] = digest[..16].try_into().unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn created(record: &ImageRecord) -> String {
    record.created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parent_name_version(parent: &Parent) -> (String, Option<String>) {
    match parent {
        Parent::Image { role, version } => (role.clone(), Some(version.to_string())),
        Parent::Base(identity) => (identity.clone(), None),
    }
}

fn cyclonedx(record: &ImageRecord) -> Value {
    let packages = packages(record);
    let (parent, parent_version) = parent_name_version(&record.parent);
    let mut ancestor = json!({
        "type": "operating-system",
        "bom-ref": "parent",
        "name": parent,
        "description": "the image this one was baked from",
    });
    if let Some(version) = parent_version {
        ancestor["version"] = json!(version);
    }
    let mut image = json!({
        "type": "operating-system",
        "bom-ref": "image",
        "name": record.role,
        "version": record.version.to_string(),
        "description": format!("oxbake image {}", record.id()),
        "pedigree": { "ancestors": [ancestor] },
    });
    if let Artifact::Local { sha256, .. } = &record.artifact {
        image["hashes"] = json!([{ "alg": "SHA-256", "content": sha256.as_str() }]);
    }
    let mut properties = vec![
        json!({ "name": "oxbake:inputs", "value": record.inputs.as_str() }),
        json!({ "name": "oxbake:target", "value": record.target }),
    ];
    for (list, digest) in &record.repositories {
        properties.push(json!({
            "name": "oxbake:repository",
            "value": format!("{list} sha256:{}", digest.as_str()),
        }));
    }
    let components: Vec<Value> = packages
        .iter()
        .map(|(name, version, purl)| {
            json!({
                "type": "library",
                "bom-ref": purl,
                "name": name,
                "version": version,
                "purl": purl,
            })
        })
        .collect();
    let refs: Vec<&str> = packages.iter().map(|(_, _, purl)| purl.as_str()).collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid(record)),
        "version": 1,
        "metadata": {
            "timestamp": created(record),
            "tools": { "components": [{
                "type": "application",
                "name": "oxbake",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": image,
            "properties": properties,
        },
        "components": components,
        "dependencies": [{ "ref": "image", "dependsOn": refs }],
    })
}

fn spdx(record: &ImageRecord) -> Value {
    let packages = packages(record);
    let (parent, parent_version) = parent_name_version(&record.parent);
    let mut image = json!({
        "SPDXID": "SPDXRef-Image",
        "name": record.role,
        "versionInfo": record.version.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "comment": format!("oxbake image {}; inputs {}", record.id(), record.inputs.as_str()),
    });
    if let Artifact::Local { sha256, .. } = &record.artifact {
        image["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": sha256.as_str() }]);
    }
    let mut parent_package = json!({
        "SPDXID": "SPDXRef-Parent",
        "name": parent,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
    });
    if let Some(version) = parent_version {
        parent_package["versionInfo"] = json!(version);
    }
    let mut all = vec![image, parent_package];
    let mut relationships = vec![
        json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image",
        }),
        json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "DESCENDANT_OF",
            "relatedSpdxElement": "SPDXRef-Parent",
        }),
    ];
    for (n, (name, version, purl)) in packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}", n + 1);
        all.push(json!({
            "SPDXID": id,
            "name": name,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let repositories: Vec<String> = record
        .repositories
        .iter()
        .map(|(list, digest)| format!("{list} sha256:{}", digest.as_str()))
        .collect();
    let mut creation = json!({
        "created": created(record),
        "creators": [format!("Tool: oxbake-{}", env!("CARGO_PKG_VERSION"))],
    });
    if !repositories.is_empty() {
        creation["comment"] = json!(format!(
            "package repositories seen by the build: {}",
            repositories.join(", ")
        ));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("oxbake image {}", record.id()),
        "documentNamespace": format!("https://oxbake.invalid/spdx/{}/{}", record.id(), uuid(record)),
        "creationInfo": creation,
        "packages": all,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distro_is_the_suite_the_image_was_built_on() {
        let trixie = [
            "deb.debian.org_debian-security_dists_trixie-security_InRelease",
            "deb.debian.org_debian_dists_trixie-updates_InRelease",
            "deb.debian.org_debian_dists_trixie_InRelease",
            "repo.example_ox_dists_stable_InRelease",
        ];
        assert_eq!(
            suite_of_lists(trixie.into_iter()).as_deref(),
            Some("trixie")
        );
        let bookworm = ["deb.debian.org_debian_dists_bookworm_InRelease"];
        assert_eq!(
            suite_of_lists(bookworm.into_iter()).as_deref(),
            Some("bookworm")
        );
        assert_eq!(
            deb_purl("libc6", "2.41-12", Some("trixie")),
            "pkg:deb/debian/libc6@2.41-12?distro=trixie"
        );
    }

    #[test]
    fn without_lists_the_suite_is_the_one_of_base_files() {
        assert_eq!(
            suite_of_base_files("12.4+deb12u15").as_deref(),
            Some("bookworm")
        );
        assert_eq!(suite_of_base_files("13.8").as_deref(), Some("trixie"));
        assert_eq!(suite_of_base_files("11.1+deb11u11"), None);
        assert_eq!(suite_of_base_files("garbled"), None);
    }

    #[test]
    fn purls_encode_epochs_and_carry_the_suite() {
        assert_eq!(
            deb_purl("bsdutils", "1:2.38.1-5+deb12u3", Some("bookworm")),
            "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u3?distro=bookworm"
        );
        assert_eq!(
            deb_purl("libc6:amd64", "2.36-9", None),
            "pkg:deb/debian/libc6@2.36-9?arch=amd64"
        );
        assert_eq!(
            deb_purl("ca-certificates", "20250419~deb12u2", None),
            "pkg:deb/debian/ca-certificates@20250419%7Edeb12u2"
        );
    }
}
