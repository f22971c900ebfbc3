//! The text log's field format: `name=value`, with every value that is not a plain token
//! quoted and escaped, so that no value (a client's model name, a team, a header, an
//! upstream's message) can forge another field or a new line (docs/security.md, item 4).
//! The JSON log escapes by construction.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// `fmt_fields` of the text log: see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotedFields;

impl<'w> MakeVisitor<Writer<'w>> for QuotedFields {
    type Visitor = QuotedVisitor<'w>;

    fn make_visitor(&self, target: Writer<'w>) -> Self::Visitor {
        QuotedVisitor {
            writer: target,
            empty: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's (or span's) fields.
pub struct QuotedVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl QuotedVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        let name = field.name();
        // Written piece by piece into the line (no `format!`, no intermediate `String`): this
        // runs for every field of every access-log line.
        self.result = if name == "message" {
            // The event's text: shown as is, but never over more than one line.
            self.writer
                .write_str(separator)
                .and_then(|()| write_escaped_controls(&mut self.writer, value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.writer
                .write_str(separator)
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='))
                .and_then(|()| write_quoted(&mut self.writer, value))
        };
    }
}

thread_local! {
    /// Where a `%value` or `?value` field is rendered before it is quoted: one buffer per
    /// thread, reused line after line.
    static RENDERED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Visit for QuotedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here as their Display text.
        let rendered = RENDERED.try_with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let written = fmt::Write::write_fmt(&mut *text, format_args!("{value:?}"));
                written.map(|()| self.field(field, &text))
            }
            // A `Debug` impl that logs while being logged: render on its own.
            Err(_) => Err(fmt::Error),
        });
        if !matches!(rendered, Ok(Ok(()))) {
            let text = format!("{value:?}");
            self.field(field, &text);
        }
    }
}

impl VisitOutput<fmt::Result> for QuotedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for QuotedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Whether `value` can stand unquoted: non-empty, and only characters that cannot start
/// another field (no space, `=`, quote, control character).
fn is_plain(value: &str) -> bool {
    // Byte by byte: every plain character is ASCII, and no byte of a longer UTF-8
    // sequence is.
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_'
                        | b'.'
                        | b':'
                        | b'/'
                        | b'@'
                        | b'+'
                        | b','
                        | b'#'
                        | b'*'
                        | b'('
                        | b')'
                        | b'['
                        | b']'
                        | b'<'
                        | b'>'
                        | b'!'
                        | b'?'
                        | b'%'
                        | b'&'
                        | b'~'
                        | b';'
                )
        })
}

/// `value` as a field's value: as is when plain, else in double quotes with `"`, `\` and
/// every control or non-ASCII whitespace character escaped.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    // Writing into a `String` cannot fail.
    let _ = write_quoted(&mut quoted, value);
    quoted
}

/// [`quote`], written straight into `out`.
fn write_quoted(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    if is_plain(value) {
        return out.write_str(value);
    }
    out.write_char('"')?;
    let mut plain_from = 0;
    for (at, c) in value.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            c if needs_escape(c) => "",
            _ => continue,
        };
        out.write_str(&value[plain_from..at])?;
        plain_from = at + c.len_utf8();
        match escaped {
            "" => c.escape_default().try_for_each(|e| out.write_char(e))?,
            escaped => out.write_str(escaped)?,
        }
    }
    out.write_str(&value[plain_from..])?;
    out.write_char('"')
}

/// `text` with control and non-ASCII whitespace characters escaped (`\n`, `\u{2028}`).
fn write_escaped_controls(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut plain_from = 0;
    for (at, c) in text.char_indices().filter(|(_, c)| needs_escape(*c)) {
        out.write_str(&text[plain_from..at])?;
        plain_from = at + c.len_utf8();
        c.escape_default().try_for_each(|e| out.write_char(e))?;
    }
    out.write_str(&text[plain_from..])
}

fn needs_escape(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ')
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The text line one event makes with the proxy's field format.
    fn logged(event: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(QuotedFields)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_values_stay_unquoted() {
        let line = logged(
            || tracing::info!(request_id = %"req-1", model = "gpt-4o", attempts = 2, cost_usd = 0.25, "request"),
        );
        assert_eq!(
            line,
            "request request_id=req-1 model=gpt-4o attempts=2 cost_usd=0.25\n"
        );
    }

    /// Issue 15, item 4: a value with spaces, `=`, quotes or a new line cannot forge a field.
    #[test]
    fn crafted_values_cannot_forge_fields_or_lines() {
        let forged = "x team=beta cost_usd=0.0\nrequest request_id=\"fake\"";
        let line = logged(|| tracing::info!(model = %forged, team = "a b", "request"));
        assert_eq!(
            line,
            "request model=\"x team=beta cost_usd=0.0\\nrequest request_id=\\\"fake\\\"\" team=\"a b\"\n"
        );
        assert_eq!(line.lines().count(), 1);
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a\u{2028}b"), "\"a\\u{2028}b\"");
    }

    /// Every kind of field (text, integers, booleans, `%` and `?` values) goes through the
    /// same quoting, written straight into the line.
    #[test]
    fn every_field_kind_is_written_and_quoted() {
        let line = logged(|| {
            tracing::info!(
                team = "caf\u{e9} \"x\"\\y",
                attempts = 3u64,
                delta = -2i64,
                ok = true,
                shown = %"a\u{2028}b",
                debug = ?"q",
                "request"
            )
        });
        assert_eq!(
            line,
            "request team=\"caf\u{e9} \\\"x\\\"\\\\y\" attempts=3 delta=-2 ok=true \
             shown=\"a\\u{2028}b\" debug=\"\\\"q\\\"\"\n"
        );
        assert_eq!(quote("caf\u{e9}"), "\"caf\u{e9}\"");
        assert_eq!(quote("a\tb\u{85}"), "\"a\\tb\\u{85}\"");
    }

    #[test]
    fn messages_stay_on_one_line() {
        let line = logged(|| tracing::warn!("upstream said: {}", "bad\nrequest forged=1"));
        assert_eq!(line, "upstream said: bad\\nrequest forged=1\n");
    }
}
