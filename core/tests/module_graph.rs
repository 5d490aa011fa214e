//! The workspace's module graphs stay acyclic: a module that names another
//! (`crate::x`) sits above it, so each crate reads as layers. Folders are
//! read as one module at their parent's level, and their own modules must
//! be acyclic among themselves too. A crate free
//! of cycles must stay so; the cycles still being taken apart (issue 23)
//! may only shrink. Read from the sources: `use crate::…` and any path
//! through `crate::`, outside `#[cfg(test)] mod tests`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The clone under test: cargo sets `CARGO_MANIFEST_DIR` when it runs a
/// test, which holds even when this binary was built from another clone
/// sharing the target directory (the compiled-in path would be that one's).
fn workspace() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
}

/// The text of a top-level module: its file, or every file of its folder.
fn module_text(path: &Path) -> String {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        entries.iter().map(|p| module_text(p)).collect()
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        // The unit tests may reach anywhere.
        match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => text[..at].to_owned(),
            None => text,
        }
    } else {
        String::new()
    }
}

/// Identifiers after `crate::`, and inside `crate::{…}` groups.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of each part at the group's own depth:
            // `crate::{wire::{codes, call}, clock}` names wire and clock.
            let (mut depth, mut start) = (0, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && is_ident(c) => {
                        names.insert(group[i..].chars().take_while(|c| is_ident(*c)).collect());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(rest.chars().take_while(|c| is_ident(*c)).collect());
        }
    }
    names
}

/// The modules of a folder (`crate_src`, or an area's folder below it) and
/// the siblings each names: by `crate::` from the crate's root, or, inside
/// an area, by `super::` and by `crate::<area path>::`.
fn graph(folder: &Path, area_path: &str) -> Graph {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if ["lib", "main", "bin", "mod"].contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            modules.insert(name, module_text(&path));
        }
    }
    let sibling_paths = if area_path.is_empty() {
        vec!["crate::".to_owned()]
    } else {
        vec!["super::".to_owned(), format!("crate::{area_path}::")]
    };
    modules
        .iter()
        .map(|(name, text)| {
            let edges = sibling_paths
                .iter()
                .flat_map(|prefix| named_modules(&text.replace(prefix.as_str(), "crate::")))
                .filter(|other| other != name && modules.contains_key(other))
                .collect();
            (name.clone(), edges)
        })
        .collect()
}

/// Each folder of a crate's sources with its path from the crate root
/// (`""` for the root, `"web"`, `"compat::imageflux"`).
fn folders(src: &Path) -> Vec<(PathBuf, String)> {
    let mut found = vec![(src.to_owned(), String::new())];
    let mut i = 0;
    while i < found.len() {
        let (folder, path) = found[i].clone();
        let mut children: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        children.sort();
        for child in children {
            let name = child.file_name().unwrap().to_string_lossy().into_owned();
            let child_path = if path.is_empty() {
                name
            } else {
                format!("{path}::{name}")
            };
            found.push((child, child_path));
        }
        i += 1;
    }
    found
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.graph[v] {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// Each crate with the cycles it still has (none for most).
const KNOWN: &[(&str, &[&[&str]])] = &[
    ("core/src", &[]),
    ("compat/src", &[]),
    ("media/src", &[]),
    ("sfu/src", &[]),
    ("fmp4/src", &[]),
    ("effects/src", &[]),
    ("partner-demo/src", &[]),
    ("src-tauri/src", &[]),
    (
        "client/src",
        &[&["app", "capture_feed", "live_session", "media_session"]],
    ),
    ("server/src", &[]),
];

#[test]
fn no_module_cycle_appears_and_the_known_ones_only_shrink() {
    let mut problems = Vec::new();
    for (crate_src, known) in KNOWN {
        let src = workspace().join(crate_src);
        let found = folders(&src)
            .iter()
            .flat_map(|(folder, area_path)| cycles(&graph(folder, area_path)))
            .collect::<Vec<_>>();
        for cycle in &found {
            let allowed = known
                .iter()
                .any(|k| cycle.iter().all(|m| k.contains(&m.as_str())));
            if !allowed {
                problems.push(format!("{crate_src}: a cycle {cycle:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_reader_finds_a_cycle_it_is_shown() {
    let mut graph = Graph::new();
    let mut edge = |a: &str, b: &str| {
        graph.entry(a.into()).or_default().insert(b.into());
        graph.entry(b.into()).or_default();
    };
    edge("signal", "call");
    edge("call", "billing");
    edge("billing", "signal");
    edge("billing", "clock");
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
    let text = "use crate::{call::Party, wire::{codes, live}};\nlet x = crate::billing::Ledger;";
    let names = named_modules(text);
    let expected: BTreeSet<String> = ["call", "wire", "billing"].map(String::from).into();
    assert_eq!(names, expected);
}
