//! Images and documents → Converse `image` / `document` blocks. Bedrock never fetches URLs,
//! so only inline data is sent (a `data:` URL is split into its parts); anything else is
//! refused naming the client's parameter.

use std::borrow::Cow;

use base64::Engine;

use crate::model::{DocumentSource, ImageSource};
use crate::providers::TranslateError;

use super::messages::refused;
use super::wire::{self, BytesSource, DocumentBlock, ImageBlock};

/// Longest document name Converse accepts.
const MAX_NAME: usize = 200;

pub fn convert_image<'a>(
    source: &'a ImageSource,
    param: &dyn Fn() -> String,
) -> Result<ImageBlock<'a>, TranslateError> {
    let (media_type, data) = match source {
        ImageSource::Base64 { media_type, data } => (media_type.as_str(), data.as_str()),
        ImageSource::Url { url } => split_data_url(url).map_err(|m| refused(param(), m))?,
    };
    let format = image_format(media_type).map_err(|m| refused(param(), m))?;
    check_base64(data, "image").map_err(|m| refused(param(), m))?;
    Ok(ImageBlock {
        format,
        source: BytesSource { bytes: data },
    })
}

/// `data:<mime>;base64,<data>` → (mime, data).
fn split_data_url(url: &str) -> Result<(&str, &str), String> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("Bedrock targets accept images only as base64 `data:` URLs".to_owned());
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| "the image data URL has no data".to_owned())?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| "the image data URL must be base64-encoded".to_owned())?;
    Ok((mime, data))
}

fn image_format(media_type: &str) -> Result<&'static str, String> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        other => Err(format!(
            "image type `{other}` is not supported (png, jpeg, gif, webp)"
        )),
    }
}

fn check_base64(data: &str, what: &str) -> Result<(), String> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(drop)
        .map_err(|_| format!("the {what} data is not valid base64"))
}

pub fn convert_document<'a>(
    source: &'a DocumentSource,
    name: Option<&'a str>,
    param: &dyn Fn() -> String,
) -> Result<DocumentBlock<'a>, TranslateError> {
    let (format, source) = match source {
        DocumentSource::Base64 { media_type, data } => {
            check_base64(data, "document").map_err(|m| refused(param(), m))?;
            let format = document_format(media_type).map_err(|m| refused(param(), m))?;
            (format, wire::DocumentSource::Bytes(data))
        }
        DocumentSource::Text { media_type, data } => {
            let format = document_format(media_type).unwrap_or("txt");
            (format, wire::DocumentSource::Text(data))
        }
        DocumentSource::Url { .. } => {
            return Err(refused(
                param(),
                "Bedrock targets accept documents only inline (base64 or text), not by URL",
            ))
        }
    };
    Ok(DocumentBlock {
        format,
        name: document_name(name),
        source,
    })
}

fn document_format(media_type: &str) -> Result<&'static str, String> {
    let mime = media_type.split(';').next().unwrap_or_default().trim();
    match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => Ok("pdf"),
        "text/csv" => Ok("csv"),
        "application/msword" => Ok("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Ok("docx"),
        "application/vnd.ms-excel" => Ok("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Ok("xlsx"),
        "text/html" => Ok("html"),
        "text/plain" => Ok("txt"),
        "text/markdown" => Ok("md"),
        other => Err(format!(
            "document type `{other}` is not supported (pdf, csv, doc, docx, xls, xlsx, html, txt, md)"
        )),
    }
}

/// Converse requires a name of letters, digits, single spaces, hyphens, parentheses and
/// square brackets: other characters become hyphens; a missing name becomes `document`.
fn document_name(name: Option<&str>) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']');
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Cow::Borrowed("document");
    };
    let clean = name.len() <= MAX_NAME
        && name.chars().all(|c| allowed(c) || c == ' ')
        && !name.contains("  ");
    if clean {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len().min(MAX_NAME));
    for c in name.chars() {
        let c = if allowed(c) {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if !(c == ' ' && out.ends_with(' ')) && out.len() < MAX_NAME {
            out.push(c);
        }
    }
    Cow::Owned(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param() -> String {
        "messages[0].content[1]".to_owned()
    }

    fn refusal<T: std::fmt::Debug>(result: Result<T, TranslateError>) -> String {
        match result {
            Err(TranslateError::Refused { param, .. }) => param,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn data_urls_and_base64_sources_become_image_blocks() {
        let url = ImageSource::Url {
            url: "data:image/jpg;base64,AAAA".to_owned(),
        };
        let block = convert_image(&url, &param).unwrap();
        assert_eq!((block.format, block.source.bytes), ("jpeg", "AAAA"));
        let inline = ImageSource::Base64 {
            media_type: "image/webp".to_owned(),
            data: "AAAA".to_owned(),
        };
        assert_eq!(convert_image(&inline, &param).unwrap().format, "webp");
    }

    #[test]
    fn remote_urls_unsupported_types_and_bad_base64_are_refused() {
        for url in [
            "https://example.com/a.png",
            "data:image/tiff;base64,AAAA",
            "data:image/png,AAAA",
            "data:image/png;base64,***",
        ] {
            let source = ImageSource::Url {
                url: url.to_owned(),
            };
            assert_eq!(
                refusal(convert_image(&source, &param)),
                "messages[0].content[1]",
                "{url}"
            );
        }
    }

    #[test]
    fn documents_map_formats_and_names() {
        let pdf = DocumentSource::Base64 {
            media_type: "application/pdf".to_owned(),
            data: "AAAA".to_owned(),
        };
        let block = convert_document(&pdf, Some("Q3 report.pdf"), &param).unwrap();
        assert_eq!(block.format, "pdf");
        assert_eq!(block.name, "Q3 report-pdf");
        assert_eq!(block.source, wire::DocumentSource::Bytes("AAAA"));
        let text = DocumentSource::Text {
            media_type: "text/plain".to_owned(),
            data: "hello".to_owned(),
        };
        let block = convert_document(&text, None, &param).unwrap();
        assert_eq!((block.format, block.name.as_ref()), ("txt", "document"));
        let remote = DocumentSource::Url {
            url: "https://example.com/a.pdf".to_owned(),
        };
        assert_eq!(
            refusal(convert_document(&remote, None, &param)),
            "messages[0].content[1]"
        );
        let odd = DocumentSource::Base64 {
            media_type: "application/zip".to_owned(),
            data: "AAAA".to_owned(),
        };
        assert!(convert_document(&odd, None, &param).is_err());
    }

    #[test]
    fn names_are_cleaned_to_the_allowed_charset() {
        assert_eq!(document_name(Some("a  b\tc_d")), "a b c-d");
        assert_eq!(document_name(Some("ok (v2) [final]")), "ok (v2) [final]");
        assert_eq!(document_name(Some(&"x".repeat(300))).len(), MAX_NAME);
        assert_eq!(document_name(Some("   ")), "document");
    }
}
