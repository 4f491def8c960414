//! Numbers in page text: `"$1,234.50"` → `1234.5`, `"1.234,50 €"` →
//! `1234.5`, `"(128 reviews)"` → `128`. Shared by field extraction and
//! the item pipeline's conversions.

/// The first number-looking run in `s`: an optional minus sign, then digits
/// with `.`, `,`, `'` or non-breaking spaces between them, plus an exponent
/// (`1e3`) if one follows. `None` when the first digits are glued to a
/// word (`v2`, `x86`) or the run is no number (`1.0.0`, `3.5.1`: a version,
/// not one number with thousands separators).
fn number_run(s: &str) -> Option<(bool, &str, i32)> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    if s[..start].ends_with(|c: char| c.is_alphabetic() || c == '_') {
        return None;
    }
    // A minus sign directly before the digits or before a currency symbol
    // (`-5`, `-$5`), but not a hyphen inside a word or code (`AB-123`).
    let before = s[..start].trim_end_matches(|c: char| {
        !c.is_alphanumeric() && !c.is_whitespace() && c != '-' && c != '\u{2212}'
    });
    let negative = before
        .strip_suffix('-')
        .or_else(|| before.strip_suffix('\u{2212}'))
        .is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric()));
    let rest = &s[start..];
    // A plain space groups thousands only before exactly three digits
    // (`1 234,56`); otherwise it ends the number (`3 items`).
    let groups_after = |i: usize| {
        let tail = &rest.as_bytes()[i + 1..];
        tail.len() >= 3
            && tail[..3].iter().all(u8::is_ascii_digit)
            && tail.get(3).is_none_or(|b| !b.is_ascii_digit())
    };
    let end = rest
        .char_indices()
        .find(|&(i, c)| {
            let separator = matches!(c, '.' | ',' | '\'' | '\u{a0}' | '\u{202f}')
                || (c == ' ' && groups_after(i));
            !(c.is_ascii_digit() || separator)
        })
        .map_or(rest.len(), |(i, _)| i);
    let run = rest[..end].trim_end_matches(|c: char| !c.is_ascii_digit());
    let after = &rest[run.len()..];
    let mut exponent = 0;
    if let Some(exp) = after.strip_prefix(['e', 'E']) {
        let digits_at = usize::from(exp.starts_with(['+', '-']));
        let digits: String = exp[digits_at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            let tail = &exp[digits_at + digits.len()..];
            if tail.starts_with(char::is_alphanumeric) {
                return None;
            }
            exponent = digits.parse::<i32>().ok()?;
            if exp.starts_with('-') {
                exponent = -exponent;
            }
        }
    }
    if !groups_are_valid(run) {
        return None;
    }
    Some((negative, run, exponent))
}

/// Whether a run's thousands separators group the digits in threes (the
/// last separator may be the decimal one): `1,234,567`, `1.234,5` and
/// `12'345.10` are, `1.0.0` and `3.5.1` are not.
fn groups_are_valid(run: &str) -> bool {
    let seps: Vec<(usize, char)> = run
        .char_indices()
        .filter(|(_, c)| !c.is_ascii_digit())
        .collect();
    let Some(&(last_at, last)) = seps.last() else {
        return true;
    };
    // With one kind of separator used more than once, all of them group
    // thousands; otherwise the last one may be the decimal separator.
    let same = seps.iter().all(|(_, c)| *c == last);
    let grouping: &[(usize, char)] = if same && seps.len() > 1 {
        &seps
    } else {
        &seps[..seps.len() - 1]
    };
    let integer_end = if same && seps.len() > 1 {
        run.len()
    } else {
        last_at
    };
    if grouping.is_empty() {
        return true;
    }
    let integer = &run[..integer_end];
    let mut parts = integer.split(|c: char| !c.is_ascii_digit());
    let first = parts.next().unwrap_or("");
    (1..=3).contains(&first.len()) && parts.all(|p| p.len() == 3)
}

/// Split a number run into (integer digits, fraction digits) given which
/// separator, if any, is the decimal one.
fn split_run(run: &str, integer_hint: bool) -> (String, String) {
    let seps: Vec<(usize, char)> = run
        .char_indices()
        .filter(|(_, c)| !c.is_ascii_digit())
        .collect();
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let decimal_at = match seps.as_slice() {
        [] => None,
        [.., (i, last)] => {
            let last_kind_count = seps.iter().filter(|(_, c)| c == last).count();
            let after = run.len() - i - last.len_utf8();
            let is_decimal_char = matches!(last, '.' | ',');
            let distinct = seps.iter().any(|(_, c)| c != last);
            if !is_decimal_char || last_kind_count > 1 {
                // `1,234,567` or `1'234`: all thousands separators.
                None
            } else if distinct {
                // `1,234.50` / `1.234,50`: the last separator is the decimal one.
                Some(*i)
            } else if after == 3 && (integer_hint || *last == ',') {
                // A lone `,` before three digits (`1,234`) is a thousands
                // separator; so is a lone `.` when a whole number is wanted.
                None
            } else {
                Some(*i)
            }
        }
    };
    match decimal_at {
        Some(i) => (digits(&run[..i]), digits(&run[i + 1..])),
        None => (digits(run), String::new()),
    }
}

/// Parse the first number in `s`, ignoring currency symbols and thousands
/// separators: `"$1,234.50"` → `1234.5`, `"1.234,50 €"` → `1234.5`,
/// `"-$5"` → `-5.0`.
pub fn parse_number(s: &str) -> Option<f64> {
    let (negative, run, exponent) = number_run(s)?;
    let (int, frac) = split_run(run, false);
    if int.is_empty() {
        return None;
    }
    let text = if frac.is_empty() {
        format!("{int}e{exponent}")
    } else {
        format!("{int}.{frac}e{exponent}")
    };
    let n: f64 = text.parse().ok().filter(|n: &f64| n.is_finite())?;
    Some(if negative { -n } else { n })
}

/// Parse the first whole number in `s`: `"(128 reviews)"` → `128`,
/// `"1,234 sold"` → `1234`; `"4.5"` is not an integer.
pub fn parse_integer(s: &str) -> Option<i64> {
    let (negative, run, exponent) = number_run(s)?;
    let (int, frac) = split_run(run, true);
    if frac.chars().any(|c| c != '0') || int.is_empty() || exponent != 0 {
        return None;
    }
    let n: i64 = int.parse().ok()?;
    Some(if negative { -n } else { n })
}
