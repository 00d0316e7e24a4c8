//! A YAML loader that keeps the line and column of every node.
//!
//! We read the event stream of `saphyr-parser` (the maintained pure-Rust YAML parser of the
//! saphyr project) and build our own tree, rather than deserializing with serde, for three
//! reasons: every diagnostic needs a location, the compiler wants to report every problem in one
//! pass instead of stopping at the first, and we must bound what aliases expand to (the "billion
//! laughs" shape) and how deep documents nest, which we can only do while building the tree.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

use crate::diag::{Diagnostic, Pos};

/// Deepest nesting of mappings and sequences we accept. Runbooks need about ten levels.
pub const MAX_DEPTH: usize = 64;

/// Most nodes that alias expansion may add to a document.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts in its file.
    pub pos: Pos,
    /// What it holds.
    pub kind: NodeKind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false when it was quoted or a block scalar (then it is always a
    /// string, never a number or a bool).
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order. Keys are nodes so errors can point at them.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's text if it is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries if the node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items if the node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Whether this is a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if is_null_text(text))
    }

    /// A short name of the node's shape for error messages.
    pub fn shape(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { text, plain: true } if is_out_of_range_int(text) => {
                "a whole number too large for 64 bits"
            }
            NodeKind::Scalar { .. } => match self.to_value() {
                Value::Bool(_) => "a bool",
                Value::Number(_) => "a number",
                _ => "a string",
            },
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }

    /// The node as a JSON value under the YAML 1.2 core schema: plain `true`/`false` are bools,
    /// plain numbers are numbers, plain `null`/`~`/empty is null, everything else a string.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain } => {
                if *plain {
                    plain_scalar(text)
                } else {
                    Value::String(text.clone())
                }
            }
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

fn is_out_of_range_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_err()
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn plain_scalar(text: &str) -> Value {
    if is_null_text(text) {
        return Value::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let looks_numeric = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.');
    if looks_numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Some(hex) = text.strip_prefix("0x")
            && let Ok(i) = i64::from_str_radix(hex, 16)
        {
            return Value::from(i);
        }
        if text.contains(['.', 'e', 'E'])
            && let Ok(f) = text.parse::<f64>()
            && f.is_finite()
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

/// Parses one YAML document from `source`; `file` is used in diagnostics.
///
/// An empty document gives a null scalar. More than one document is an error.
pub fn parse(file: &Arc<str>, source: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        file: file.clone(),
        anchors: HashMap::new(),
        stack: Vec::new(),
        alias_nodes: 0,
        root: None,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(source);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => builder.event(event, span)?,
            Err(e) if e.info().contains("recursion limit") => {
                let m = e.marker();
                return Err(Diagnostic::new(
                    file.clone(),
                    Pos::new(m.line(), m.col() + 1),
                    format!("YAML nests deeper than the parser allows (more than {MAX_DEPTH} levels is refused)"),
                )
                .with_hint("a runbook needs only a few levels; flatten this value"));
            }
            Err(e) => {
                let m = e.marker();
                return Err(Diagnostic::new(
                    file.clone(),
                    Pos::new(m.line(), m.col() + 1),
                    format!("invalid YAML: {}", e.info()),
                )
                .with_hint("check the indentation and quoting around this place"));
            }
        }
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos::new(1, 1),
        kind: NodeKind::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

enum Open {
    Seq(Node, usize),
    Map(Node, Option<Node>, usize),
}

struct Builder {
    file: Arc<str>,
    anchors: HashMap<usize, Node>,
    stack: Vec<Open>,
    alias_nodes: usize,
    root: Option<Node>,
    documents: usize,
}

/// How many mappings and sequences nest inside `node`, itself included.
fn depth(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 0,
        NodeKind::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Scalar { .. } => 0,
        NodeKind::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeKind::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
    }
}

impl Builder {
    fn pos(span: &Span) -> Pos {
        Pos::new(span.start.line(), span.start.col() + 1)
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        let pos = Self::pos(&span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::new(
                        self.file.clone(),
                        pos,
                        "a runbook file holds one YAML document, but this is a second one",
                    )
                    .with_hint("remove the `---` line or split the file in two"));
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(
                    pos,
                    Open::Seq(
                        Node {
                            pos,
                            kind: NodeKind::Seq(Vec::new()),
                        },
                        anchor,
                    ),
                )?;
            }
            Event::MappingStart(anchor, _) => {
                self.open(
                    pos,
                    Open::Map(
                        Node {
                            pos,
                            kind: NodeKind::Map(Vec::new()),
                        },
                        None,
                        anchor,
                    ),
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(node, anchor)) => (node, anchor),
                    Some(Open::Map(node, _, anchor)) => (node, anchor),
                    None => return Ok(()),
                };
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(Diagnostic::new(
                        self.file.clone(),
                        pos,
                        "this alias refers to an anchor that is not defined before it",
                    ));
                };
                // Checked on the anchor before cloning it, so a refused expansion costs nothing.
                if self.stack.len() + depth(target) > MAX_DEPTH {
                    return Err(Diagnostic::new(
                        self.file.clone(),
                        pos,
                        format!(
                            "YAML nests deeper than {MAX_DEPTH} levels once this alias is expanded"
                        ),
                    )
                    .with_hint("a runbook needs only a few levels; flatten the anchored value"));
                }
                self.alias_nodes += count_nodes(target);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(Diagnostic::new(
                        self.file.clone(),
                        pos,
                        format!(
                            "YAML aliases expand to more than {MAX_ALIAS_NODES} nodes; refusing to expand them"
                        ),
                    )
                    .with_hint(
                        "this is the shape of a \"billion laughs\" document; write the values out or use fewer nested aliases",
                    ));
                }
                let mut node = target.clone();
                node.pos = pos;
                self.finish(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, open: Open) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::new(
                self.file.clone(),
                pos,
                format!("YAML nests deeper than {MAX_DEPTH} levels"),
            )
            .with_hint("a runbook needs only a few levels; flatten this value"));
        }
        self.stack.push(open);
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Open::Map(map, pending_key, _)) => match pending_key.take() {
                None => {
                    if !matches!(node.kind, NodeKind::Scalar { .. }) {
                        return Err(Diagnostic::new(
                            self.file.clone(),
                            node.pos,
                            "mapping keys must be plain strings, not lists or maps",
                        ));
                    }
                    if let NodeKind::Map(entries) = &map.kind {
                        let text = node.as_str().unwrap_or_default();
                        if let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.as_str() == Some(text))
                        {
                            return Err(Diagnostic::new(
                                self.file.clone(),
                                node.pos,
                                format!(
                                    "duplicate key `{text}` (first given at line {})",
                                    first.pos.line
                                ),
                            )
                            .with_hint("remove one of the two; YAML keys must be unique"));
                        }
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if let NodeKind::Map(entries) = &mut map.kind {
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<Node, Diagnostic> {
        parse(&Arc::from("t.yaml"), src)
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = load("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let map = node.as_map().unwrap();
        assert_eq!(map[1].0.pos, Pos::new(2, 1));
        let seq = map[1].1.as_seq().unwrap();
        assert_eq!(seq[1].pos, Pos::new(4, 5));
        assert_eq!(
            node.to_value(),
            serde_json::json!({"a": 1, "b": ["x", "y"]})
        );
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let node = load("a: '1'\nb: true\nc: \"false\"\nd: 1.5\ne: ~\nf: 0x10").unwrap();
        assert_eq!(
            node.to_value(),
            serde_json::json!({"a": "1", "b": true, "c": "false", "d": 1.5, "e": null, "f": 16})
        );
    }

    #[test]
    fn refuses_billion_laughs() {
        let mut src = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            src.push_str(&format!(
                "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = n;
        }
        let err = load(&src).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{err}");
    }

    #[test]
    fn refuses_deep_nesting() {
        let src = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = load(&src).unwrap_err();
        assert!(err.message.contains("nests deeper"), "{err}");
        let mut block = String::new();
        for depth in 0..100 {
            block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
        }
        let err = load(&block).unwrap_err();
        assert!(err.message.contains("nests deeper"), "{err}");
    }

    #[test]
    fn reports_duplicate_keys_and_syntax_errors_with_positions() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(3, 1));
        assert!(err.message.contains("duplicate key `a`"));
        let err = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn aliases_cannot_get_around_the_nesting_limit() {
        // Regression: each anchor is 40 deep, within the limit, but nesting one alias in
        // another went past it unchecked.
        let deep = |name: &str, inner: &str| {
            format!(
                "{name}: &{name} {}{inner}{}\n",
                "[".repeat(40),
                "]".repeat(40)
            )
        };
        let src = deep("a", "1") + &deep("b", "*a");
        let err = load(&src).unwrap_err();
        assert!(err.message.contains("once this alias is expanded"), "{err}");
    }

    #[test]
    fn small_aliases_are_fine() {
        let node = load("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(node.to_value()["other"]["x"], 1);
    }
}
