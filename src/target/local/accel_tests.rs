use super::*;

#[test]
fn modes_parse() {
    assert_eq!("auto".parse(), Ok(AccelMode::Auto));
    assert_eq!("tcg".parse(), Ok(AccelMode::Tcg));
    assert_eq!("kvm".parse(), Ok(AccelMode::Kvm));
    assert!("xen".parse::<AccelMode>().unwrap_err().contains("`xen`"));
}

#[test]
fn explicit_modes_never_probe_and_say_so() {
    assert_eq!(plan(AccelMode::Tcg), Plan::Use(Accel::Tcg));
    assert_eq!(plan(AccelMode::Kvm), Plan::Use(Accel::Kvm));
    assert_eq!(
        setting_line(AccelMode::Tcg).unwrap(),
        "accelerator: tcg (the target sets accel = \"tcg\"; no probe)"
    );
    assert!(
        setting_line(AccelMode::Kvm)
            .unwrap()
            .starts_with("accelerator: kvm (")
    );
    assert_eq!(setting_line(AccelMode::Auto), None);
}

fn boot(id: &str) -> HostBoot {
    HostBoot {
        boot_id: id.into(),
        qemu: "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)".into(),
        kernel: "6.1.0-41-amd64".into(),
    }
}

/// One oxbake process starting one VM under `mode`, on a host where
/// `/dev/kvm` opens but the probe gives `probe_says`: what it launches
/// with. Each probe counts in `probes`.
fn one_process(
    cache: &Path,
    boot: HostBoot,
    mode: AccelMode,
    probe_says: Accel,
    probes: &mut u32,
) -> (Accel, Option<Recalled>) {
    let mut v = Verdicts::new();
    let recalled = match mode {
        AccelMode::Auto => v.recall(Some(Store::new(cache, boot)), || true),
        _ => None,
    };
    let accel = match v.plan(mode, || true) {
        Plan::Use(accel) => accel,
        Plan::Fallback(_) => Accel::Tcg,
        Plan::ProbeKvm => {
            *probes += 1;
            v.record(probe_says);
            probe_says
        }
    };
    (accel, recalled)
}

#[test]
fn one_probe_per_boot() {
    let dir = tempfile::tempdir().unwrap();
    let mut probes = 0;
    let run = |id: &str, probes: &mut u32| {
        one_process(dir.path(), boot(id), AccelMode::Auto, Accel::Tcg, probes)
    };
    let (first, recalled) = run("boot-a", &mut probes);
    assert_eq!((first, recalled, probes), (Accel::Tcg, None, 1));
    let (second, recalled) = run("boot-a", &mut probes);
    assert_eq!(
        (second, probes),
        (Accel::Tcg, 1),
        "the second process probed"
    );
    let recalled = recalled.expect("the kept verdict");
    assert_eq!(recalled.path, dir.path().join(CACHE_FILE));
    let line = recalled.line();
    assert!(line.starts_with("accelerator: tcg (the KVM probe failed on this boot; cached in "));
    assert!(
        line.contains(&dir.path().join(CACHE_FILE).display().to_string()),
        "{line}"
    );
    let (_, recalled) = run("boot-b", &mut probes);
    assert_eq!((recalled, probes), (None, 2), "a new boot probes again");
    run("boot-b", &mut probes);
    assert_eq!(probes, 2);
}

#[test]
fn a_new_qemu_or_kernel_probes_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut probes = 0;
    one_process(
        dir.path(),
        boot("a"),
        AccelMode::Auto,
        Accel::Kvm,
        &mut probes,
    );
    let (accel, recalled) = one_process(
        dir.path(),
        boot("a"),
        AccelMode::Auto,
        Accel::Kvm,
        &mut probes,
    );
    assert_eq!((accel, probes), (Accel::Kvm, 1));
    assert!(recalled.unwrap().line().starts_with("accelerator: kvm ("));
    let mut newer = boot("a");
    newer.qemu = "QEMU emulator version 8.0.0".into();
    one_process(dir.path(), newer, AccelMode::Auto, Accel::Kvm, &mut probes);
    assert_eq!(probes, 2);
    let mut kernel = boot("a");
    kernel.kernel = "6.12.0".into();
    one_process(dir.path(), kernel, AccelMode::Auto, Accel::Kvm, &mut probes);
    assert_eq!(probes, 3);
}

#[test]
fn explicit_modes_neither_probe_nor_read_nor_write_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut probes = 0;
    for (mode, accel) in [(AccelMode::Tcg, Accel::Tcg), (AccelMode::Kvm, Accel::Kvm)] {
        let got = one_process(dir.path(), boot("a"), mode, Accel::Tcg, &mut probes);
        assert_eq!(got, (accel, None));
    }
    assert_eq!(probes, 0);
    assert!(!dir.path().join(CACHE_FILE).exists());
}

#[test]
fn a_corrupt_or_foreign_cache_file_is_ignored_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CACHE_FILE);
    let foreign = "accel = \"kvm\"\nboot_id = \"a\"\nqemu = \"q\"\nkernel = \"k\"\nowner = \"x\"\n";
    for text in [
        "accel = \"tcg\"\nboot_id = ",
        foreign,
        "accel = \"xen\"\n",
        "\u{0}\u{1}",
    ] {
        std::fs::write(&path, text).unwrap();
        let mut probes = 0;
        let (accel, recalled) = one_process(
            dir.path(),
            boot("a"),
            AccelMode::Auto,
            Accel::Tcg,
            &mut probes,
        );
        assert_eq!((accel, recalled, probes), (Accel::Tcg, None, 1), "{text:?}");
        let kept: Kept = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((kept.accel.as_str(), kept.boot()), ("tcg", boot("a")));
        assert_eq!(crate::fsutil::tests::names(dir.path()), [CACHE_FILE]);
    }
}

#[test]
fn a_kept_kvm_verdict_does_not_hold_without_dev_kvm() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path(), boot("a"));
    store.save(Accel::Kvm);
    let mut v = Verdicts::new();
    assert_eq!(v.recall(Some(store.clone()), || false), None);
    assert_eq!(
        v.plan(AccelMode::Auto, || false),
        Plan::Fallback("/dev/kvm is not usable")
    );
    let mut v = Verdicts::new();
    assert!(v.recall(Some(store), || true).is_some());
    assert_eq!(
        v.plan(AccelMode::Auto, || panic!("no look at /dev/kvm")),
        Plan::Use(Accel::Kvm)
    );
}

#[tokio::test]
async fn this_boot_is_named_when_qemu_runs() {
    // Without QEMU installed there is no boot to key a verdict by.
    if let Some(boot) = HostBoot::current().await {
        assert!(boot.qemu.starts_with("QEMU emulator version"), "{boot:?}");
        assert_eq!(boot.boot_id.len(), 36, "{boot:?}");
    }
}

#[tokio::test]
async fn kernel_mark_is_found_or_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serial.log");
    std::fs::write(&log, "Decompressing Linux... Parsing ELF... done.\n").unwrap();
    assert!(!kernel_runs(&log, Duration::from_millis(300)).await);
    std::fs::write(
        &log,
        "Booting the kernel.\n[    0.000000] Linux version 6.1.0\n",
    )
    .unwrap();
    assert!(kernel_runs(&log, Duration::from_millis(300)).await);
}
