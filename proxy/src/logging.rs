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
        self.result = if name == "message" {
            // The event's text: shown as is, but never over more than one line.
            write!(self.writer, "{separator}{}", escape_controls(value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}={}", quote(value))
        };
    }
}

impl Visit for QuotedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here as their Display text.
        let text = format!("{value:?}");
        self.field(field, &text);
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
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+,#*()[]<>!?%&~;".contains(c))
}

/// `value` as a field's value: as is when plain, else in double quotes with `"`, `\` and
/// every control or non-ASCII whitespace character escaped.
pub fn quote(value: &str) -> String {
    if is_plain(value) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if needs_escape(c) => quoted.extend(c.escape_default()),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `text` with control and non-ASCII whitespace characters escaped (`\n`, `\u{2028}`).
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match needs_escape(c) {
            true => escaped.extend(c.escape_default()),
            false => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
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

    #[test]
    fn messages_stay_on_one_line() {
        let line = logged(|| tracing::warn!("upstream said: {}", "bad\nrequest forged=1"));
        assert_eq!(line, "upstream said: bad\\nrequest forged=1\n");
    }
}
