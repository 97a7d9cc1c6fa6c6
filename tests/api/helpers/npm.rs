//! npm in tests: install a package directory's pinned dependencies once.

use std::path::Path;

/// `npm ci` in `dir` unless its `node_modules` already matches the lockfile.
pub async fn npm_ci(dir: &Path) {
    let lock = std::fs::read(dir.join("package-lock.json")).expect("a committed lockfile");
    let stamp = dir.join("node_modules/.ci-lock");
    if std::fs::read(&stamp).ok().as_ref() == Some(&lock) {
        return;
    }
    let out = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .await
        .expect("npm (Node.js) is needed for the client suites");
    assert!(
        out.status.success(),
        "npm ci in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(stamp, lock).expect("stamp");
}
