//! What every browser test of the workspace shares: whether headless Chromium can run, and
//! the rule for when it cannot. Each test file includes this file with `#[path]` and names
//! `reports/tests/browser` (where `npm ci` installs playwright-core and Mermaid) from its
//! own crate.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), `node`, and the named packages in
//! `reports/tests/browser/node_modules`. Without them a test says why and passes, unless
//! `CONCLAVE_BROWSER_TESTS=1`, which makes a missing browser a failure (CI sets it).

use std::path::Path;
use std::process::Command;

/// What the browser tests need, or why they cannot run: Chromium, node, and `needed` under
/// `browser_dir/node_modules`.
pub fn ready(browser_dir: &Path, needed: &[&str]) -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("no node".into());
    }
    let modules = browser_dir.join("node_modules");
    for package in needed {
        if !modules.join(package).exists() {
            return Err(format!(
                "no {} (run `npm ci` in {})",
                modules.join(package).display(),
                browser_dir.display()
            ));
        }
    }
    Ok(())
}

/// Whether to go on; panics when the browser is missing and CI asked for it.
pub fn browser_or_skip(test: &str, browser_dir: &Path, needed: &[&str]) -> bool {
    match ready(browser_dir, needed) {
        Ok(()) => true,
        Err(why) if std::env::var("CONCLAVE_BROWSER_TESTS").as_deref() == Ok("1") => {
            panic!("{test}: CONCLAVE_BROWSER_TESTS=1 but {why}")
        }
        Err(why) => {
            // Straight to standard error, past the test harness's capture, so that a
            // skipped test shows in `cargo test`'s output.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "{test}: SKIPPED, {why}; set CONCLAVE_BROWSER_TESTS=1 to make this a failure"
            );
            false
        }
    }
}
