//! The top-level modules of sked-core form layers: no module depends, through `crate::` paths,
//! on a module that depends back on it (issue 10 removed admin → runtime → service → admin).
//! Read from the sources, comments left out; a new cycle fails here, naming it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

/// The top-level modules (`src/<m>.rs` or `src/<m>/`) and the source files of each.
fn modules(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a utf-8 name")
            .to_owned();
        if name == "lib" {
            continue;
        }
        let files: &mut Vec<String> = modules.entry(name).or_default();
        collect(&path, files);
    }
    modules
}

fn collect(path: &Path, files: &mut Vec<String>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("a readable directory") {
            collect(&entry.expect("a directory entry").path(), files);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        files.push(fs::read_to_string(path).expect("a readable source"));
    }
}

/// The modules named by `crate::<m>` paths and `use crate::{<m>, ...}` groups in `source`.
fn uses(source: &str, known: &BTreeSet<&str>) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group, up to its closing brace.
            let (mut depth, mut name) = (0, String::new());
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_segment(&name));
                        name.clear();
                    }
                    _ if depth == 0 => name.push(ch),
                    _ => {}
                }
            }
            found.insert(first_segment(&name));
        } else {
            found.insert(first_segment(rest));
        }
    }
    found.retain(|m| known.contains(m.as_str()));
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn the_top_level_modules_of_core_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let known: BTreeSet<&str> = modules.keys().map(String::as_str).collect();
    assert!(
        known.contains("runtime") && known.contains("admin") && known.contains("supervise"),
        "the modules were found: {known:?}"
    );
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(name, files)| {
            let mut deps: BTreeSet<String> = files.iter().flat_map(|f| uses(f, &known)).collect();
            deps.remove(name);
            (name.as_str(), deps)
        })
        .collect();
    // Depth-first search from every module; a path back to a module on the stack is a cycle.
    fn visit<'a>(
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        cycles: &mut BTreeSet<String>,
    ) {
        let top = *stack.last().expect("a module on the stack");
        for dep in &graph[top] {
            if let Some(at) = stack.iter().position(|m| m == dep) {
                let mut cycle: Vec<&str> = stack[at..].to_vec();
                cycle.push(dep);
                cycles.insert(cycle.join(" -> "));
            } else {
                stack.push(dep);
                visit(graph, stack, cycles);
                stack.pop();
            }
        }
    }
    let mut cycles = BTreeSet::new();
    for module in graph.keys() {
        visit(&graph, &mut vec![module], &mut cycles);
    }
    assert!(cycles.is_empty(), "module cycles in sked-core: {cycles:#?}");
    // The layering the runtime relies on.
    assert!(graph["readiness"].is_empty(), "readiness is a leaf");
    assert!(!graph["runtime"].contains("service") && !graph["runtime"].contains("admin"));
}
