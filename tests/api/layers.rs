//! The layers of src/lib.rs, checked: edges (`http`, `ws`) on top, services below them, the
//! bus and the store below those, `protocol` and `domain` at the bottom. A module may use what
//! is below it, never what is above, so data flows one way and nothing imports in a circle.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules of ours a file names (`crate::x` in any form), tests left out.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            // `use crate::{a::x, b::y}`: every first segment in the braces.
            if let Some(group) = rest.strip_prefix('{').and_then(|r| r.split('}').next()) {
                for part in group.split(',') {
                    let n: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !n.is_empty() {
                        out.push(n);
                    }
                }
            }
        } else {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_uses_a_layer_above_it() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    // What each top-level module may not use.
    let forbidden: &[(&str, &[&str])] = &[
        (
            "protocol",
            &[
                "app",
                "state",
                "http",
                "ws",
                "auth",
                "chat",
                "mcp",
                "sync",
                "store",
                "bus",
                "hub",
                "llm",
                "connections",
                "ratelimit",
                "redis_conn",
                "config",
                "error",
            ],
        ),
        (
            "domain",
            &[
                "app",
                "state",
                "http",
                "ws",
                "auth",
                "chat",
                "mcp",
                "sync",
                "store",
                "bus",
                "hub",
                "llm",
                "connections",
                "protocol",
                "config",
                "error",
            ],
        ),
        (
            "store",
            &[
                "app",
                "state",
                "http",
                "ws",
                "auth",
                "chat",
                "mcp",
                "bus",
                "hub",
                "llm",
                "connections",
            ],
        ),
        (
            "bus",
            &[
                "app", "state", "http", "ws", "auth", "chat", "mcp", "sync", "store",
            ],
        ),
        (
            "hub",
            &[
                "app", "state", "http", "ws", "auth", "chat", "mcp", "sync", "store",
            ],
        ),
        ("sync", &["app", "state", "http", "ws", "chat", "mcp"]),
        (
            "auth",
            &["app", "state", "http", "ws", "chat", "mcp", "sync"],
        ),
        (
            "llm",
            &[
                "app", "state", "http", "ws", "chat", "mcp", "sync", "store", "bus", "hub",
            ],
        ),
        ("mcp", &["app", "state", "http", "ws", "chat"]),
        ("chat", &["app", "state", "http", "ws"]),
        (
            "connections",
            &["app", "state", "http", "ws", "chat", "mcp", "sync"],
        ),
        ("http", &["app"]),
        ("ws", &["app"]),
    ];
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some((_, banned)) = forbidden.iter().find(|(m, _)| *m == top) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for u in uses(&text) {
            if banned.contains(&u.as_str()) {
                wrong.push(format!("{} uses crate::{u}", rel.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

/// Test files share code only through `helpers/`: no test file reaches into another, so a
/// test can move or go without breaking its neighbours.
#[test]
fn test_files_import_helpers_not_each_other() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut wrong = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir()
            || p.file_name()
                .is_some_and(|n| n == "main.rs" || n == "layers.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for u in uses(&text) {
            if u != "helpers" {
                wrong.push(format!("{} uses crate::{u}", p.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "test files importing each other:\n{}",
        wrong.join("\n")
    );
}
