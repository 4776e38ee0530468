//! Aligned text tables and the small formatting helpers of human output.

use chrono::{DateTime, SecondsFormat, Utc};

/// `rows` (the first one is the header) as left-aligned columns two spaces apart; the last
/// column is not padded and no line has trailing blanks.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `2026-11-23T04:00:00Z` (milliseconds shown only when there are some).
pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// [`time`] of an optional instant, `-` when absent.
pub fn time_or_dash(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// An optional text, `-` when absent or empty.
pub fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".to_owned(),
    }
}

/// `aligned key: value` lines, the values starting in one column.
pub fn fields(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

/// A value as a shell word: unchanged when it is safe, else in single quotes.
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b',' | b'+' | b'@'
                )
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_without_trailing_blanks() {
        let rows = vec![
            vec!["ID".into(), "APP".into(), "LABELS".into()],
            vec!["a-long-id".into(), "sms".into(), "".into()],
            vec!["b".into(), "email".into(), "team=pay".into()],
        ];
        assert_eq!(
            render(&rows),
            "ID         APP    LABELS\na-long-id  sms\nb          email  team=pay\n"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("team=pay"), "team=pay");
        assert_eq!(shell_word("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00Z");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
