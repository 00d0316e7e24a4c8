//! Plain-text tables for `runs`, `show` and `outputs`: columns as wide as their widest cell,
//! two spaces apart, no trailing spaces.

/// How a column's cells line up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// Renders `rows` under `header`, each line indented by `indent`. Widths count characters, so
/// `→` takes one column as it does on a terminal.
pub(super) fn render(
    indent: &str,
    header: &[&str],
    align: &[Align],
    rows: &[Vec<String>],
) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate().take(n) {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            let right = align.get(i) == Some(&Align::Right);
            if right {
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.push_str(cell);
            if !right {
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_trims_line_ends() {
        let rows = vec![
            vec!["kms".to_owned(), "1".to_owned(), String::new()],
            vec!["alb_primary".to_owned(), "12".to_owned(), "x".to_owned()],
        ];
        let t = render(
            "  ",
            &["step", "n", "note"],
            &[Align::Left, Align::Right, Align::Left],
            &rows,
        );
        assert_eq!(
            t,
            "  step          n  note\n  kms           1\n  alb_primary  12  x\n"
        );
    }
}
