//! Policy values as text, bounded: what a policy's `print`, `debug`, `to_string`, `to_debug`
//! and string interpolation make of an array or a map, what its `replace` makes of a string,
//! and how the host shows a policy's value in an error (`expect`, `throw`).
//!
//! Rhai builds these strings whole and checks their size afterwards: a map holding one shared
//! 60 KB string under 9,000 keys costs the policy 300 KB, and its text 540 MB, allocated in one
//! step, before any check. Here the text is written into a buffer that refuses to grow past its
//! limit, so the step that fails costs at most the limit. Nesting is written down to
//! [`MAX_DEPTH`] levels, then elided: the writer's recursion is bounded too.

use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, Map};
use std::fmt::Write;

/// How deep the text of a nested value goes before it is elided (`[…]`).
pub const MAX_DEPTH: usize = 32;

/// A string buffer that refuses to grow past `limit` bytes.
struct Bounded {
    out: String,
    limit: usize,
}

impl Bounded {
    fn new(limit: usize) -> Bounded {
        Bounded {
            out: String::new(),
            limit,
        }
    }

    /// What was written, with `…` at its end: the text of a value that was cut.
    fn cut(mut self) -> String {
        self.out.push('…');
        self.out
    }
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.out.len() + s.len() > self.limit {
            let mut room = self.limit - self.out.len();
            while !s.is_char_boundary(room) {
                room -= 1;
            }
            self.out.push_str(&s[..room]);
            return Err(std::fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// At most `chars` characters of a value's text, with `…` when cut: how the host shows a
/// policy's value in a message.
pub fn brief(value: &Dynamic, chars: usize) -> String {
    let mut b = Bounded::new(chars * 4);
    let cut = write_value(&mut b, value, 0).is_err();
    first_chars(&b.out, chars, cut)
}

/// At most `chars` characters of a value as Rhai displays it (a string as it is, anything else
/// as [`brief`]), with `…` when cut.
pub fn shown(value: &Dynamic, chars: usize) -> String {
    match value.as_immutable_string_ref() {
        Ok(s) => first_chars(&s, chars, false),
        Err(_) => brief(value, chars),
    }
}

/// The first `chars` characters of `text`, with `…` when that cuts it (or it was `cut` already).
fn first_chars(text: &str, chars: usize, cut: bool) -> String {
    let mut s: String = text.chars().take(chars).collect();
    if cut || s.len() < text.len() {
        s.push('…');
    }
    s
}

fn write_value(b: &mut Bounded, v: &Dynamic, depth: usize) -> std::fmt::Result {
    if let Ok(a) = v.as_array_ref() {
        return write_array(b, &a, depth);
    }
    if let Ok(m) = v.as_map_ref() {
        return write_map(b, &m, depth);
    }
    if let Ok(s) = v.as_immutable_string_ref() {
        // A string's debug text escapes it; written through the buffer, so it stops too.
        return write!(b, "{:?}", s.as_str());
    }
    write!(b, "{v:?}")
}

fn write_array(b: &mut Bounded, a: &Array, depth: usize) -> std::fmt::Result {
    if depth >= MAX_DEPTH && !a.is_empty() {
        return b.write_str("[…]");
    }
    b.write_str("[")?;
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            b.write_str(", ")?;
        }
        write_value(b, x, depth + 1)?;
    }
    b.write_str("]")
}

fn write_map(b: &mut Bounded, m: &Map, depth: usize) -> std::fmt::Result {
    if depth >= MAX_DEPTH && !m.is_empty() {
        return b.write_str("#{…}");
    }
    b.write_str("#{")?;
    for (i, (k, x)) in m.iter().enumerate() {
        if i > 0 {
            b.write_str(", ")?;
        }
        write!(b, "{:?}: ", k.as_str())?;
        write_value(b, x, depth + 1)?;
    }
    b.write_str("}")
}

type TextResult = Result<ImmutableString, Box<EvalAltResult>>;

/// Rhai's error for a string over the size limit.
fn too_long() -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge("Length of string".into(), rhai::Position::NONE).into()
}

/// Registers the bounded text of arrays and maps under the names Rhai formats with (`print`,
/// `debug`, `to_string`, `to_debug`: interpolation and `+` call these), and the checked
/// `replace`. Functions registered on the engine are found before the standard package's.
///
/// A text longer than the string limit is an error, as it is in Rhai, but one that costs at
/// most the limit. The value itself is then replaced by the part of its text that was
/// written: when this error comes from an interpolation or a `+`, Rhai writes the value with
/// its own unbounded formatter instead, and that must find a small value whose text is still
/// over the limit (so the interpolation fails too, as it would have). A map whose string
/// values share one 60 KB string 9,000 times is the case: Rhai's own text of it is 540 MB.
pub fn register(engine: &mut rhai::Engine, max_string: usize) {
    for name in ["print", "debug", "to_string", "to_debug"] {
        engine.register_fn(name, move |a: &mut Array| -> TextResult {
            let mut b = Bounded::new(max_string);
            if write_array(&mut b, a, 0).is_ok() {
                return Ok(b.out.into());
            }
            *a = vec![b.cut().into()];
            Err(too_long())
        });
        engine.register_fn(name, move |m: &mut Map| -> TextResult {
            let mut b = Bounded::new(max_string);
            if write_map(&mut b, m, 0).is_ok() {
                return Ok(b.out.into());
            }
            *m = Map::from([("…".into(), b.cut().into())]);
            Err(too_long())
        });
    }
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: &str, with: &str| replace(s, find, with, max_string),
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: &str, with: char| {
            replace(s, find, with.encode_utf8(&mut [0; 4]), max_string)
        },
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: char, with: &str| {
            replace(s, find.encode_utf8(&mut [0; 4]), with, max_string)
        },
    );
}

/// `string.replace(find, with)`, refused before it allocates when the result would be longer
/// than `max` bytes (Rhai's own builds it first: 60 KB replaced in itself is 3.6 GB).
fn replace(
    s: &mut ImmutableString,
    find: &str,
    with: &str,
    max: usize,
) -> Result<(), Box<EvalAltResult>> {
    if s.is_empty() {
        return Ok(());
    }
    let count = if find.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(find).count()
    };
    let grows = with.len().saturating_sub(find.len());
    if s.len().saturating_add(count.saturating_mul(grows)) > max {
        return Err(too_long());
    }
    *s = s.replace(find, with).into();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of a value, as Rhai's `to_debug` writes it (`[1, "a"]`, `#{"k": 2}`), or an
    /// error when it would be longer than `limit` bytes.
    fn debug_text(value: &Dynamic, limit: usize) -> Result<String, std::fmt::Error> {
        let mut b = Bounded::new(limit);
        write_value(&mut b, value, 0)?;
        Ok(b.out)
    }

    fn nested(depth: usize) -> Dynamic {
        let mut v: Dynamic = Array::new().into();
        for _ in 0..depth {
            v = vec![v].into();
        }
        v
    }

    #[test]
    fn text_is_the_same_as_rhais_for_ordinary_values() {
        let mut m = Map::new();
        m.insert("host".into(), "DC1-1".into());
        m.insert("weight".into(), (2 as rhai::INT).into());
        let a: Array = vec![m.into(), ().into(), true.into(), 'c'.into()];
        assert_eq!(
            debug_text(&a.into(), 1000).unwrap(),
            r#"[#{"host": "DC1-1", "weight": 2}, (), true, 'c']"#
        );
    }

    #[test]
    fn a_text_over_its_limit_is_refused_without_being_built() {
        let big: Dynamic = "x".repeat(60_000).into();
        let a: Array = (0..9000).map(|_| big.clone()).collect();
        let before = crate::memory::allocated();
        assert!(debug_text(&a.into(), 64 * 1024).is_err());
        assert!(crate::memory::allocated() < before + 1024 * 1024);
    }

    /// A map that holds one 60 KB string under 9,000 keys: small in memory, 540 MB as text.
    const SHARED: &str = r#"let s = "x"; s.pad(60000, "y"); let m = #{};
        for i in 0..9000 { m[`k${i}`] = s; }"#;

    #[test]
    fn every_way_to_text_a_value_over_the_limit_is_an_error() {
        let e = crate::policy::engine::for_compiling();
        for text in [
            "`${m}`",
            r#""" + m"#,
            "m.to_string()",
            "debug(m)",
            "m.to_debug()",
        ] {
            let r = e.run(&format!("{SHARED} let t = {text};"));
            let err = r.expect_err(text).to_string();
            assert!(err.contains("Length of string"), "{text}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_elided_not_recursed() {
        let text = debug_text(&nested(5000), 1 << 20).unwrap();
        assert_eq!(text.matches('[').count(), MAX_DEPTH + 1, "{text}");
        assert!(text.contains("[…]"));
    }

    #[test]
    fn brief_cuts_at_a_number_of_characters() {
        let big: Dynamic = "é".repeat(500).into();
        let s = brief(&big, 10);
        assert_eq!(s.chars().count(), 11);
        assert!(s.ends_with('…'));
        assert_eq!(brief(&(3 as rhai::INT).into(), 10), "3");
    }

    #[test]
    fn replace_that_would_grow_past_the_limit_is_refused() {
        let mut s: ImmutableString = "y".repeat(60_000).into();
        let with = s.to_string();
        assert!(replace(&mut s, "y", &with, 64 * 1024).is_err());
        assert!(replace(&mut s, "", "ab", 64 * 1024).is_err());
        let mut t: ImmutableString = "a-b".into();
        replace(&mut t, "-", "+", 64 * 1024).unwrap();
        assert_eq!(t.as_str(), "a+b");
    }
}
