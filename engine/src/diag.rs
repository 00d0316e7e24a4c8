//! Problems found in a runbook, each with the file, line and column it is about.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub col: usize,
}

impl Pos {
    /// A position.
    pub fn new(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }
}

/// One problem: what is wrong, where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: Arc<str>,
    /// Where in the file.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when we can tell.
    pub hint: Option<String>,
    /// Leave out the source line: it may hold a secret (a parameter file's line).
    #[serde(skip)]
    pub conceal_source: bool,
}

impl Diagnostic {
    /// A problem at a place.
    pub fn new(file: Arc<str>, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file,
            pos,
            message: message.into(),
            hint: None,
            conceal_source: false,
        }
    }

    /// Adds what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the problem for a terminal: the `FILE:LINE:COL: message` line, the source line
    /// with a caret under the column, and the hint. `sources` maps file names to their text.
    pub fn render(&self, sources: &[(&str, &str)]) -> String {
        let mut out = format!("{self}\n");
        let source = sources
            .iter()
            .find(|(name, _)| *name == &*self.file)
            .map(|(_, text)| *text);
        if self.pos.line > 0
            && !self.conceal_source
            && let Some(line) = source.and_then(|s| s.lines().nth(self.pos.line - 1))
        {
            let number = self.pos.line.to_string();
            let pad = " ".repeat(number.len());
            let chars: Vec<char> = line.chars().collect();
            // Long lines are shown as a window around the column.
            let col = self.pos.col.saturating_sub(1).min(chars.len());
            let start = col.saturating_sub(60);
            let end = (col + 60).min(chars.len());
            let mut shown: String = chars[start..end].iter().collect();
            let mut caret_at = col - start;
            if start > 0 {
                shown.insert(0, '…');
                caret_at += 1;
            }
            if end < chars.len() {
                shown.push('…');
            }
            let caret_pad: String = shown
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "{pad} |\n{number} | {shown}\n{pad} | {caret_pad}^\n"
            ));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("  hint: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            // Not in a file (a command-line flag): no line or column to give.
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

/// Every problem found in one pass over a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Renders every problem, then a count.
    pub fn render(&self, sources: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str("error: ");
            out.push_str(&d.render(sources));
            out.push('\n');
        }
        let n = self.0.len();
        out.push_str(&format!(
            "{n} problem{} found; nothing was run\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The name among `candidates` closest to `name`, if one is close enough to be a likely typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" when there is a near name, else a list of what is allowed.
pub fn suggest(name: &str, candidates: &[&str]) -> String {
    let mut unique: Vec<&str> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if !c.is_empty() && !unique.contains(c) {
            unique.push(c);
        }
    }
    let candidates = &unique[..];
    match nearest(name, candidates.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None if candidates.len() <= 12 => format!(
            "expected one of: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "none of the {} known names is close to `{name}`; check the spelling",
            candidates.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_caret_and_hint() {
        let d = Diagnostic::new(Arc::from("rb.yaml"), Pos::new(2, 5), "unknown field `neds`")
            .with_hint("did you mean `needs`?");
        let out = d.render(&[("rb.yaml", "steps:\n  - neds: [a]\n")]);
        assert_eq!(
            out,
            "rb.yaml:2:5: unknown field `neds`\n  |\n2 |   - neds: [a]\n  |     ^\n  hint: did you mean `needs`?\n"
        );
    }

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(nearest("neds", ["needs", "uses", "with"]), Some("needs"));
        assert_eq!(
            nearest("core.slep", ["core.sleep", "core.log"]),
            Some("core.sleep")
        );
        assert_eq!(nearest("banana", ["needs", "uses"]), None);
    }
}
