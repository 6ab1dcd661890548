//! No import circles between the files of src/: every `crate::`, `super::`
//! and `self::` path (in `use` declarations and in code) is resolved to the
//! file that defines its module, and the graph of files must have no cycle.
//!
//! A path resolves to its longest prefix that is a module: `crate::upload::
//! settings::X` is src/upload/settings.rs, `crate::upload::X` (an item
//! re-exported there) is src/upload/mod.rs, whose own imports then count for
//! mod.rs. `mod x;` declarations are not imports; `#[cfg(test)]` items
//! (the `mod tests` blocks) are left out, and so are comments and strings.
//! Exported macros (`crate::debug!`) resolve to the file defining them.
//! src/main.rs is a crate of its own and is not read.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::Path;

/// One file of src/: its path from the crate root and its module path.
struct Source {
    rel: String,
    module: Vec<String>,
    text: String,
}

fn read_sources(dir: &Path, root: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(&path, root, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .expect("under the crate root")
            .to_string_lossy()
            .into_owned();
        if rel == "src/main.rs" {
            continue;
        }
        let mut module: Vec<String> = rel
            .trim_start_matches("src/")
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        let text = fs::read_to_string(&path).expect("read a source file");
        out.push(Source { rel, module, text });
    }
}

/// Comments, string and character literals replaced by spaces (newlines
/// kept, so that offsets still give line numbers).
fn strip_comments_and_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (b[i] == b'r' || rest.starts_with(b"br")) && (i == 0 || !ident(b[i - 1])) && {
            let s = if b[i] == b'b' { i + 2 } else { i + 1 };
            let hashes = b[s..].iter().take_while(|&&c| c == b'#').count();
            b.get(s + hashes) == Some(&b'"')
        } {
            let s = if b[i] == b'b' { i + 2 } else { i + 1 };
            let hashes = b[s..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = s + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A character literal, or a lifetime (left alone).
            if b.get(i + 1) == Some(&b'\\') {
                let end = b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |n| i + 2 + n + 1);
                blank(&mut out, i, end);
                i = end;
            } else if let Some(len) = text[i + 1..]
                .chars()
                .next()
                .map(char::len_utf8)
                .filter(|&len| b.get(i + 1 + len) == Some(&b'\''))
            {
                blank(&mut out, i, i + len + 2);
                i += len + 2;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Index just past the `close` matching the `open` at `at`.
fn matching(b: &[u8], at: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    for (j, &c) in b.iter().enumerate().skip(at) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    b.len()
}

/// `#[cfg(test)]` items (attribute to the item's `;` or closing brace)
/// replaced by spaces.
fn strip_test_items(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut from = 0;
    while let Some(n) = text[from..].find("#[cfg(test)]") {
        let start = from + n;
        let mut j = start + "#[cfg(test)]".len();
        let mut depth = 0i32;
        let end = loop {
            match b.get(j) {
                None => break b.len(),
                Some(b'(' | b'[') => depth += 1,
                Some(b')' | b']') => depth -= 1,
                Some(b';') if depth == 0 => break j + 1,
                Some(b'{') if depth == 0 => break matching(b, j, b'{', b'}'),
                _ => {}
            }
            j += 1;
        };
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(u8),
}

/// Tokens with their byte offsets (`$crate` is the identifier `crate`).
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric()
            || c == b'_'
            || (c == b'$' && b[i + 1..].starts_with(b"crate"))
        {
            let s = if c == b'$' { i + 1 } else { i };
            let mut j = s;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.push((Tok::Ident(text[s..j].to_owned()), i));
            i = j;
        } else if b[i..].starts_with(b"::") {
            out.push((Tok::Sep, i));
            i += 2;
        } else {
            out.push((Tok::Punct(c), i));
            i += 1;
        }
    }
    out
}

/// Inline `mod name { … }` blocks: (body start, body end, name).
fn inline_modules(text: &str, toks: &[(Tok, usize)]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for w in toks.windows(3) {
        if let [(Tok::Ident(m), _), (Tok::Ident(name), _), (Tok::Punct(b'{'), at)] = w {
            if m == "mod" {
                let end = matching(text.as_bytes(), *at, b'{', b'}');
                out.push((*at, end, name.clone()));
            }
        }
    }
    out
}

/// Expands a `use` tree starting at `toks[i]` into full paths (`self`
/// inside braces stands for the prefix). Returns the index after the tree.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(id))
                if id == "self" && !prefix.is_empty() && path.len() == prefix.len() =>
            {
                out.push(path.clone());
                i += 1;
                break;
            }
            Some(Tok::Ident(id)) if id == "as" => {
                i += 2;
                break;
            }
            Some(Tok::Ident(id)) => {
                path.push(id.clone());
                i += 1;
                match toks.get(i).map(|t| &t.0) {
                    Some(Tok::Sep) => i += 1,
                    _ => {
                        out.push(path.clone());
                        if matches!(toks.get(i).map(|t| &t.0), Some(Tok::Ident(a)) if a == "as") {
                            i += 2;
                        }
                        break;
                    }
                }
            }
            Some(Tok::Sep) => i += 1,
            Some(Tok::Punct(b'*')) => {
                out.push(path.clone());
                i += 1;
                break;
            }
            Some(Tok::Punct(b'{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        None => return i,
                        Some(Tok::Punct(b'}')) => return i + 1,
                        Some(Tok::Punct(b',')) => i += 1,
                        _ => i = use_tree(toks, i, &path, out),
                    }
                }
            }
            _ => break,
        }
    }
    i
}

/// One import: the line it is on and the path as written.
struct Import {
    line: usize,
    written: String,
    absolute: Vec<String>,
}

/// A path as written in `module` (of a file whose child modules are
/// `children`) made absolute; `None` for other crates.
fn absolute(
    module: &[String],
    path: &[String],
    in_use: bool,
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let mut base = module.to_vec();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) if in_use && children.contains(first) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn imports_of(src: &Source, children_of: &HashMap<Vec<String>, BTreeSet<String>>) -> Vec<Import> {
    let text = strip_test_items(&strip_comments_and_literals(&src.text));
    let toks = tokens(&text);
    let inline = inline_modules(&text, &toks);
    let module_at = |at: usize| {
        let mut m = src.module.clone();
        for (s, e, name) in &inline {
            if *s < at && at < *e {
                m.push(name.clone());
            }
        }
        m
    };
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (tok, at) = &toks[i];
        let after_sep = i > 0 && toks[i - 1].0 == Tok::Sep;
        let module = module_at(*at);
        let children = children_of.get(&module).unwrap_or(&empty);
        match tok {
            Tok::Ident(id) if id == "use" && !after_sep => {
                let mut paths = Vec::new();
                let next = use_tree(&toks, i + 1, &[], &mut paths);
                for p in paths {
                    if let Some(a) = absolute(&module, &p, true, children) {
                        out.push(Import {
                            line: line_of(*at),
                            written: format!("use {}", p.join("::")),
                            absolute: a,
                        });
                    }
                }
                i = next.max(i + 1);
            }
            Tok::Ident(id)
                if matches!(id.as_str(), "crate" | "super" | "self")
                    && !after_sep
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Sep) =>
            {
                let mut p = vec![id.clone()];
                let mut j = i + 1;
                while let (Some((Tok::Sep, _)), Some((Tok::Ident(seg), _))) =
                    (toks.get(j), toks.get(j + 1))
                {
                    p.push(seg.clone());
                    j += 2;
                }
                if let Some(a) = absolute(&module, &p, false, children) {
                    out.push(Import {
                        line: line_of(*at),
                        written: p.join("::"),
                        absolute: a,
                    });
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// Exported macros (`#[macro_export] macro_rules! name`) → their file.
fn exported_macros(sources: &[Source]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for src in sources {
        let text = strip_comments_and_literals(&src.text);
        let mut rest = text.as_str();
        while let Some(n) = rest.find("#[macro_export]") {
            rest = &rest[n + "#[macro_export]".len()..];
            if let Some(m) = rest.trim_start().strip_prefix("macro_rules!") {
                let name: String = m
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name, src.rel.clone());
            }
        }
    }
    out
}

/// The file → file import edges, each with the first import behind it.
fn import_graph(root: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sources = Vec::new();
    read_sources(&root.join("src"), root, &mut sources);
    let mut modules: HashMap<Vec<String>, String> = HashMap::new();
    let mut children_of: HashMap<Vec<String>, BTreeSet<String>> = HashMap::new();
    for src in &sources {
        modules.insert(src.module.clone(), src.rel.clone());
        if let Some((last, parent)) = src.module.split_last() {
            children_of
                .entry(parent.to_vec())
                .or_default()
                .insert(last.clone());
        }
        // Inline modules belong to their file.
        let text = strip_comments_and_literals(&src.text);
        let toks = tokens(&text);
        for (s, _, name) in inline_modules(&text, &toks) {
            let mut m = src.module.clone();
            for (s2, e2, outer) in inline_modules(&text, &toks) {
                if s2 < s && s < e2 {
                    m.push(outer);
                }
            }
            children_of
                .entry(m.clone())
                .or_default()
                .insert(name.clone());
            m.push(name);
            modules.insert(m, src.rel.clone());
        }
    }
    let macros = exported_macros(&sources);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for src in &sources {
        let edges = graph.entry(src.rel.clone()).or_default();
        for imp in imports_of(src, &children_of) {
            let target = (0..=imp.absolute.len())
                .rev()
                .find_map(|n| modules.get(&imp.absolute[..n]).map(|f| (n, f)));
            let file = match target {
                Some((0, _))
                    if imp.absolute.len() == 1 && macros.contains_key(&imp.absolute[0]) =>
                {
                    macros[&imp.absolute[0]].clone()
                }
                Some((_, f)) => f.clone(),
                None => continue,
            };
            if file != src.rel {
                edges
                    .entry(file)
                    .or_insert_with(|| format!("line {}: {}", imp.line, imp.written));
            }
        }
    }
    graph
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack.remove(w);
                scc.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// For each edge inside a circle, the shortest cycle through it:
/// `a → b → … → a`, each listed once.
fn cycles_in(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    scc: &[String],
) -> Vec<Vec<String>> {
    let inside: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for u in scc {
        for v in graph[u].keys().filter(|v| inside.contains(v.as_str())) {
            // Shortest path v → u inside the circle.
            let mut prev: HashMap<&str, &str> = HashMap::new();
            let mut queue = VecDeque::from([v.as_str()]);
            let mut found = v == u;
            while let Some(x) = queue.pop_front() {
                if x == u {
                    found = true;
                    break;
                }
                for y in graph[x].keys().filter(|y| inside.contains(y.as_str())) {
                    if y != v && !prev.contains_key(y.as_str()) {
                        prev.insert(y, x);
                        queue.push_back(y);
                    }
                }
            }
            assert!(found, "{v} reaches {u} inside its circle");
            let mut path = vec![u.as_str()];
            let mut x = u.as_str();
            while x != v {
                x = prev[x];
                path.push(x);
            }
            path.reverse(); // v … u
            let mut cycle: Vec<String> = std::iter::once(u.clone())
                .chain(path.iter().map(|s| s.to_string()))
                .collect();
            // Canonical rotation: start at the smallest file.
            cycle.pop();
            let min = (0..cycle.len())
                .min_by_key(|&k| &cycle[k])
                .expect("non-empty");
            cycle.rotate_left(min);
            if seen.insert(cycle.clone()) {
                let first = cycle[0].clone();
                cycle.push(first);
                out.push(cycle);
            }
        }
    }
    out
}

#[test]
fn no_import_circles_between_source_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let graph = import_graph(root);
    assert!(
        graph.len() > 40 && graph.values().map(BTreeMap::len).sum::<usize>() > 100,
        "too few files or imports found: the scan is broken"
    );
    let mut report = String::new();
    for scc in circles(&graph) {
        report.push_str(&format!(
            "circle of {} files: {}\n",
            scc.len(),
            scc.join(", ")
        ));
        for cycle in cycles_in(&graph, &scc) {
            report.push_str(&format!("  {}\n", cycle.join(" → ")));
            for pair in cycle.windows(2) {
                report.push_str(&format!(
                    "      {} → {} ({})\n",
                    pair[0], pair[1], graph[&pair[0]][&pair[1]]
                ));
            }
        }
    }
    if !report.is_empty() {
        eprint!("{report}");
    }
    assert!(
        report.is_empty(),
        "import circles between source files:\n{report}"
    );
}

/// The scan itself: paths in use trees, code, comments and test modules.
#[test]
fn the_scan_finds_what_it_should() {
    let text = r##"
//! Docs naming crate::docs::X are not imports.
use crate::a::{self, b::{C, d::E}, f as g};
use super::h::*;
use self::k::L;
fn f() { crate::m::n(); let s = "crate::strings::Z"; let c = '"'; super::super::p::q(); }
#[cfg(test)]
mod tests { use crate::tested::T; }
mod inner { use super::r::S; }
"##;
    let src = Source {
        rel: "src/x/y.rs".into(),
        module: vec!["x".into(), "y".into()],
        text: text.into(),
    };
    let found: Vec<String> = imports_of(&src, &HashMap::new())
        .into_iter()
        .map(|i| i.absolute.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "a",
            "a::b::C",
            "a::b::d::E",
            "a::f",
            "x::h",
            "x::y::k::L",
            "m::n",
            "p::q",
            "x::y::r::S",
        ]
    );
}
