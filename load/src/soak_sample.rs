//! What the soak reads of the server between rounds: open fds and threads from /proc, gauges
//! from its metrics, and the drift verdict's windows.

/// The medians (RSS, fds) of the samples from a sixth to a third of the run, and of its last
/// sixth (at least one sample each).
pub(crate) fn windows(samples: &[(f64, u64, u64)]) -> ((f64, u64), (f64, u64)) {
    let n = samples.len();
    let sixth = (n / 6).max(1);
    let median = |part: &[(f64, u64, u64)]| {
        let mut rss: Vec<f64> = part.iter().map(|s| s.0).collect();
        let mut fds: Vec<u64> = part.iter().map(|s| s.1).collect();
        rss.sort_by(f64::total_cmp);
        fds.sort_unstable();
        (rss[rss.len() / 2], fds[fds.len() / 2])
    };
    let early = sixth.min(n - 1)..(2 * sixth).clamp(sixth.min(n - 1) + 1, n);
    (median(&samples[early]), median(&samples[n - sixth..]))
}

pub(crate) fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

pub(crate) fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("Threads:"));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A gauge's value from the Prometheus text.
pub(crate) fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
