//! The library's module structure: no import cycles between its top-level modules, nor
//! between the files of one directory module. Read from the sources (`use crate::…`,
//! `super::…`), test code left out, the binary's own modules (`src/main.rs`, `src/cli/`)
//! too: what ships as the library must be layered so each module can be read, tested and
//! changed on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its test code: everything from the first `#[cfg(test)]` on (tests sit
/// at the bottom of each file), and nothing at all of files that are tests themselves.
fn shipped_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("read a source file");
    let text = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
    // Comments may name modules without importing them.
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every path that follows `prefix` (`crate::`, `super::`), including
/// the members of a `prefix{a, b::c}` group.
fn segments_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for member in group[..end].split(',') {
                let name: String = member
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// A cycle in `graph`, as the list of nodes around it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// `src/a/b/c.rs` as `["a", "b", "c"]`, `src/a/mod.rs` as `["a"]`, `src/lib.rs` as `[]`.
fn module_path(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).expect("under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn library_files() -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    all.into_iter()
        .filter(|f| {
            let parts = module_path(f);
            !(f.ends_with("main.rs") || parts.first().is_some_and(|p| p == "cli"))
        })
        .collect()
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = 0;
    for file in library_files() {
        let Some(module) = module_path(&file).first().cloned() else {
            continue;
        };
        let uses = segments_after(&shipped_code(&file), "crate::");
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(uses.into_iter().filter(|u| *u != module));
        modules += 1;
    }
    assert!(modules > 20, "the sources were found ({modules} files)");
    assert!(
        graph.get("pipeline").is_some_and(|e| e.contains("gate")),
        "imports are read: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn files_of_one_directory_module_import_each_other_without_cycles() {
    // For each directory module, the graph of its direct children (files and folders).
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in library_files() {
        let path = module_path(&file);
        if path.len() < 2 {
            continue;
        }
        let code = shipped_code(&file);
        // Each ancestor directory sees this file as one of its children.
        for depth in 1..path.len() {
            let parent = path[..depth].to_vec();
            let child = path[depth].clone();
            let mut uses: BTreeSet<String> = BTreeSet::new();
            if depth == path.len() - 1 {
                uses.extend(segments_after(&code, "super::"));
            }
            let crate_prefix = format!("crate::{}::", parent.join("::"));
            uses.extend(segments_after(&code, &crate_prefix));
            let graph = graphs.entry(parent).or_default();
            let edges = graph.entry(child.clone()).or_default();
            edges.extend(uses.into_iter().filter(|u| *u != child));
        }
    }
    // A parent's `mod.rs` declares and re-exports its children; its own edges are not
    // imports between siblings, so only the children are nodes.
    for (parent, graph) in &graphs {
        let children: BTreeSet<String> = graph.keys().cloned().collect();
        let siblings: BTreeMap<String, BTreeSet<String>> = graph
            .iter()
            .map(|(child, edges)| {
                (
                    child.clone(),
                    edges.intersection(&children).cloned().collect(),
                )
            })
            .collect();
        if let Some(cycle) = find_cycle(&siblings) {
            panic!(
                "import cycle inside {}: {}",
                parent.join("::"),
                cycle.join(" -> ")
            );
        }
    }
    assert!(
        graphs.contains_key(&vec!["config".to_owned()]),
        "{graphs:?}"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".into()].into());
    graph.insert("b".into(), ["c".into()].into());
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.insert("c".into(), ["a".into()].into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        segments_after(
            "use crate::{app::App, body};\nlet x = crate::proxy::f();",
            "crate::"
        ),
        ["app", "body", "proxy"].map(String::from).into()
    );
}
