//! `saferoot features`: the kernel features saferoot probes, and what
//! `run` and the mount table readers will use.

use saferoot::features::{probe_all, Feature};
use saferoot::rootfs::Strategy;
use serde::Serialize;

use crate::args::FeaturesArgs;
use crate::errors::CliError;
use crate::output::{print, print_json, table};

#[derive(Debug, Serialize)]
struct FeatureView {
    name: &'static str,
    min_kernel: &'static str,
    available: bool,
    disabled: bool,
    baseline: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    kernel: Option<String>,
    features: Vec<FeatureView>,
    strategy: Option<&'static str>,
    strategy_error: Option<String>,
    mount_table_backend: &'static str,
}

/// Runs `saferoot features`.
pub fn features(args: &FeaturesArgs) -> Result<(), CliError> {
    let kernel = saferoot::procfs::Procfs::new()
        .and_then(|p| p.read_sysctl("kernel.osrelease"))
        .ok();
    let features: Vec<FeatureView> = probe_all()
        .into_iter()
        .map(|s| FeatureView {
            name: s.feature.name(),
            min_kernel: s.feature.min_kernel(),
            available: s.available,
            disabled: s.disabled,
            baseline: s.feature.is_baseline(),
        })
        .collect();
    let (strategy, strategy_error) = match Strategy::Auto.resolve() {
        Ok(s) => (Some(s.name()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let statmount =
        saferoot::features::has(Feature::Statmount) && saferoot::features::has(Feature::Listmount);
    let report = Report {
        kernel,
        features,
        strategy,
        strategy_error,
        mount_table_backend: if statmount { "statmount" } else { "mountinfo" },
    };
    if args.json {
        return print_json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .features
        .iter()
        .map(|f| {
            vec![
                f.name.to_string(),
                f.min_kernel.to_string(),
                match (f.available, f.disabled) {
                    (true, _) => "yes".into(),
                    (false, true) => "no (disabled by SAFEROOT_DISABLE_FEATURES)".into(),
                    (false, false) if f.baseline => "NO (saferoot needs it)".into(),
                    (false, false) => "no".into(),
                },
            ]
        })
        .collect();
    let mut out = format!(
        "kernel: Linux {}\n\n",
        report.kernel.as_deref().unwrap_or("(unknown)")
    );
    out += &table(&["FEATURE", "LINUX", "AVAILABLE"], &rows);
    out += &format!(
        "\nrun strategy (auto): {}\nmount table backend (auto): {}\n",
        report
            .strategy
            .map(str::to_string)
            .or(report.strategy_error.clone())
            .unwrap_or_default(),
        report.mount_table_backend
    );
    print(&out);
    Ok(())
}
