//! The Prometheus text exposition format (0.0.4): family headers, sample
//! lines, label escaping and value formatting. Every `/metrics` family is
//! written through here, into a `String` or a `Vec<u8>`, without allocating.

use std::fmt;

/// Where exposition text goes.
pub(crate) trait Text {
    fn push_str(&mut self, s: &str);
    fn push_fmt(&mut self, args: fmt::Arguments<'_>);
}

impl Text for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    fn push_fmt(&mut self, args: fmt::Arguments<'_>) {
        let _ = fmt::Write::write_fmt(self, args);
    }
}

impl Text for Vec<u8> {
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    fn push_fmt(&mut self, args: fmt::Arguments<'_>) {
        let _ = std::io::Write::write_fmt(self, args);
    }
}

/// A sample value, written the way Prometheus parses it.
pub(crate) trait Value {
    fn write_to(self, out: &mut impl Text);
}

impl Value for u64 {
    fn write_to(self, out: &mut impl Text) {
        out.push_fmt(format_args!("{self}"));
    }
}

impl Value for usize {
    fn write_to(self, out: &mut impl Text) {
        out.push_fmt(format_args!("{self}"));
    }
}

impl Value for u8 {
    fn write_to(self, out: &mut impl Text) {
        out.push_fmt(format_args!("{self}"));
    }
}

/// Integers without a fraction (`-0.0` as `0`), anything else as Rust prints it.
impl Value for f64 {
    fn write_to(self, out: &mut impl Text) {
        if self.fract() == 0.0 && self.abs() < 1e15 {
            out.push_fmt(format_args!("{}", self as i64));
        } else {
            out.push_fmt(format_args!("{self}"));
        }
    }
}

/// Appends a family's `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut impl Text, name: &str, kind: &str, help: &str) {
    out.push_fmt(format_args!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}

/// Hands `v` escaped as a label value (`\\`, `\"`, `\n`) to `push`, piece
/// by piece, without allocating. Docker names, labels and interface names
/// (which may hold `"` and `\\`) all go through it.
pub(crate) fn escape_label_value(v: &str, mut push: impl FnMut(&str)) {
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        push(&v[start..i]);
        push(escaped);
        start = i + 1;
    }
    push(&v[start..]);
}

/// Appends `key="value"`, the value escaped.
pub(crate) fn label(out: &mut impl Text, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    escape_label_value(value, |p| out.push_str(p));
    out.push_str("\"");
}

/// One sample line being written: `name{labels} value`. Labels go in the
/// order given; the braces only when there is one.
pub(crate) struct Line<'o, T: Text> {
    out: &'o mut T,
    labels: bool,
}

impl<'o, T: Text> Line<'o, T> {
    pub(crate) fn new(out: &'o mut T, name: &str) -> Line<'o, T> {
        out.push_str(name);
        Line { out, labels: false }
    }

    fn separator(&mut self) {
        self.out.push_str(if self.labels { "," } else { "{" });
        self.labels = true;
    }

    /// Adds `key="value"`, the value escaped.
    pub(crate) fn label(mut self, key: &str, value: &str) -> Self {
        self.separator();
        label(self.out, key, value);
        self
    }

    /// Adds label pairs already rendered (by [`label`], comma-separated);
    /// nothing when empty.
    pub(crate) fn labels(mut self, rendered: &str) -> Self {
        if !rendered.is_empty() {
            self.separator();
            self.out.push_str(rendered);
        }
        self
    }

    /// Ends the line with its value.
    pub(crate) fn value(self, v: impl Value) {
        self.out.push_str(if self.labels { "} " } else { " " });
        v.write_to(self.out);
        self.out.push_str("\n");
    }
}

/// A family being written: its header goes out with its first sample, so a
/// family without samples leaves no trace.
pub(crate) struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
    /// The header is out already.
    pub header: bool,
}

impl Family {
    pub(crate) fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            header: false,
        }
    }

    /// Starts a sample line of the family, after the header if not out yet.
    pub(crate) fn sample<'o, T: Text>(&mut self, out: &'o mut T) -> Line<'o, T> {
        if !self.header {
            self.header = true;
            header(out, self.name, self.kind, self.help);
        }
        Line::new(out, self.name)
    }
}

/// Appends a family of one unlabelled sample.
pub(crate) fn single(out: &mut impl Text, name: &str, kind: &str, help: &str, v: impl Value) {
    header(out, name, kind, help);
    Line::new(out, name).value(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(v: &str) -> String {
        let mut s = String::new();
        escape_label_value(v, |p| s.push_str(p));
        s
    }

    #[test]
    fn label_values_are_escaped_for_the_exposition_format() {
        assert_eq!(escaped("eth0"), "eth0");
        assert_eq!(escaped(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escaped("x\ny"), "x\\ny");
        assert_eq!(escaped("é\"é"), "é\\\"é");
        assert_eq!(escaped(""), "");
    }

    #[test]
    fn lines_and_values() {
        let mut out = Vec::new();
        let mut fam = Family::new("a_total", "counter", "As.");
        fam.sample(&mut out).value(3u64);
        fam.sample(&mut out)
            .labels("x=\"1\"")
            .label("k", "v\"")
            .value(1.5);
        Line::new(&mut out, "b").labels("").value(-0.0);
        Line::new(&mut out, "c").label("k", "v").value(2e15);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP a_total As.\n# TYPE a_total counter\na_total 3\n\
             a_total{x=\"1\",k=\"v\\\"\"} 1.5\nb 0\nc{k=\"v\"} 2000000000000000\n"
        );
    }
}
