//! Composite alarm rules (`AlarmRule`): parsing and evaluation.

use serde::{Deserialize, Serialize};

use crate::backend::AlarmStateValue;

/// A composite alarm's rule (`AlarmRule`): `ALARM(name)`, `OK(name)`,
/// `INSUFFICIENT_DATA(name)`, `TRUE`, `FALSE`, combined with `AND`, `OR`, `NOT` and
/// parentheses. Names may be quoted; an ARN names an alarm too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlarmRule {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// The named alarm is in this state.
    Is(AlarmStateValue, String),
    /// Both.
    And(Box<AlarmRule>, Box<AlarmRule>),
    /// Either.
    Or(Box<AlarmRule>, Box<AlarmRule>),
    /// Not.
    Not(Box<AlarmRule>),
}

impl AlarmRule {
    /// Parses a rule; the error says what was not understood.
    pub fn parse(text: &str) -> Result<AlarmRule, String> {
        let tokens = tokenize(text)?;
        let mut pos = 0;
        let rule = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!("unexpected {:?} in alarm rule", tokens[pos]));
        }
        Ok(rule)
    }

    /// Evaluates the rule; `state_of` gives an alarm's state by name or ARN (`None`: no such
    /// alarm, which matches no state).
    pub fn holds(&self, state_of: &dyn Fn(&str) -> Option<AlarmStateValue>) -> bool {
        match self {
            AlarmRule::Const(b) => *b,
            AlarmRule::Is(state, name) => state_of(name) == Some(*state),
            AlarmRule::And(a, b) => a.holds(state_of) && b.holds(state_of),
            AlarmRule::Or(a, b) => a.holds(state_of) || b.holds(state_of),
            AlarmRule::Not(a) => !a.holds(state_of),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => return Err("unterminated quoted name in alarm rule".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

fn parse_or(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("OR".into())) {
        *pos += 1;
        left = AlarmRule::Or(Box::new(left), Box::new(parse_and(t, pos)?));
    }
    Ok(left)
}

fn parse_and(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    let mut left = parse_not(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("AND".into())) {
        *pos += 1;
        left = AlarmRule::And(Box::new(left), Box::new(parse_not(t, pos)?));
    }
    Ok(left)
}

fn parse_not(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    if t.get(*pos) == Some(&Token::Word("NOT".into())) {
        *pos += 1;
        return Ok(AlarmRule::Not(Box::new(parse_not(t, pos)?)));
    }
    match t.get(*pos) {
        Some(Token::Open) => {
            *pos += 1;
            let inner = parse_or(t, pos)?;
            if t.get(*pos) != Some(&Token::Close) {
                return Err("missing `)` in alarm rule".into());
            }
            *pos += 1;
            Ok(inner)
        }
        Some(Token::Word(w)) if w == "TRUE" || w == "FALSE" => {
            *pos += 1;
            Ok(AlarmRule::Const(w == "TRUE"))
        }
        Some(Token::Word(w)) => {
            let state = match w.as_str() {
                "ALARM" => AlarmStateValue::Alarm,
                "OK" => AlarmStateValue::Ok,
                "INSUFFICIENT_DATA" => AlarmStateValue::InsufficientData,
                other => return Err(format!("unknown function {other:?} in alarm rule")),
            };
            let name = match (t.get(*pos + 1), t.get(*pos + 2), t.get(*pos + 3)) {
                (
                    Some(Token::Open),
                    Some(Token::Quoted(n) | Token::Word(n)),
                    Some(Token::Close),
                ) => n.clone(),
                _ => return Err(format!("{w} takes one alarm name in parentheses")),
            };
            *pos += 4;
            Ok(AlarmRule::Is(state, name))
        }
        other => Err(format!("unexpected {other:?} in alarm rule")),
    }
}
