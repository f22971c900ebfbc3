//! `telemetry:` → [`TelemetrySettings`]: where OTLP traces go, over which transport, how many
//! are sampled and queued (docs/configuration.md, "telemetry"). The standard OpenTelemetry
//! variables fill in what the file leaves out: `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`.

use serde_saphyr::{Location, Spanned};

use super::Ctx;
use crate::config::error::Problem;
use crate::config::raw::RawTelemetry;
use crate::telemetry::settings::{
    EndpointSource, OtlpProtocol, OtlpSettings, TelemetrySettings, DEFAULT_MAX_QUEUE_SPANS,
    DEFAULT_SERVICE_NAME,
};

const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const PROTOCOL_VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
/// The largest queue accepted: a span is a few hundred bytes to a few KiB.
const MAX_QUEUE_CEILING: i64 = 1_000_000;

pub(super) fn compile(ctx: &Ctx<'_>, raw: RawTelemetry) -> Result<TelemetrySettings, Problem> {
    let endpoint = match &raw.otlp_endpoint {
        Some(value) => Some((
            endpoint(
                &ctx.text(value, "telemetry.otlp_endpoint")?,
                value.referenced,
            )?,
            EndpointSource::Config,
        )),
        None => match ctx.env_var(ENDPOINT_VAR).filter(|v| !v.trim().is_empty()) {
            Some(text) => Some((
                endpoint(text.trim(), Location::UNKNOWN).map_err(|p| {
                    Problem::at(Location::UNKNOWN, format!("{ENDPOINT_VAR}: {}", p.message))
                })?,
                EndpointSource::Environment,
            )),
            None => None,
        },
    };
    let protocol = protocol(ctx, raw.otlp_protocol.as_ref())?;
    let sample_ratio = match &raw.sample_ratio {
        Some(value) if (0.0..=1.0).contains(&value.value) => value.value,
        Some(value) => {
            return Err(Problem::spanned(
                value,
                "telemetry.sample_ratio must be between 0 and 1",
            ))
        }
        None => 1.0,
    };
    let max_queue_spans = match &raw.max_queue_spans {
        Some(value) if (1..=MAX_QUEUE_CEILING).contains(&value.value) => value.value as usize,
        Some(value) => {
            return Err(Problem::spanned(
                value,
                format!("telemetry.max_queue_spans must be between 1 and {MAX_QUEUE_CEILING}"),
            ))
        }
        None => DEFAULT_MAX_QUEUE_SPANS,
    };
    let service_name = ctx
        .env_var(SERVICE_NAME_VAR)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    Ok(TelemetrySettings {
        otlp: endpoint.map(|(endpoint, source)| OtlpSettings {
            endpoint,
            protocol,
            sample_ratio,
            max_queue_spans,
            service_name,
            source,
        }),
    })
}

/// An `http://` or `https://` URL with a host: the collector's base URL.
fn endpoint(text: &str, at: Location) -> Result<String, Problem> {
    let invalid = |why: &str| {
        Problem::at(
            at,
            format!("telemetry.otlp_endpoint: {why} (expected a URL like http://collector:4317)"),
        )
    };
    let url = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// `grpc` or `http` from the file, else from `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`,
/// `http/protobuf`), else OTLP's default, `http/protobuf`.
fn protocol(ctx: &Ctx<'_>, raw: Option<&Spanned<String>>) -> Result<OtlpProtocol, Problem> {
    if let Some(value) = raw {
        let text = ctx.text(value, "telemetry.otlp_protocol")?;
        return parse_protocol(&text).ok_or_else(|| {
            Problem::spanned(
                value,
                format!("telemetry.otlp_protocol: `{text}` is not one of grpc, http"),
            )
        });
    }
    match ctx.env_var(PROTOCOL_VAR).filter(|v| !v.trim().is_empty()) {
        Some(text) => parse_protocol(text.trim()).ok_or_else(|| {
            Problem::at(
                Location::UNKNOWN,
                format!("{PROTOCOL_VAR}: `{}` is not one of grpc, http/protobuf (http/json is not supported)", text.trim()),
            )
        }),
        None => Ok(OtlpProtocol::HttpProtobuf),
    }
}

fn parse_protocol(text: &str) -> Option<OtlpProtocol> {
    match text {
        "grpc" => Some(OtlpProtocol::Grpc),
        "http" | "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{compile_yaml, error_of};
    use crate::telemetry::settings::{EndpointSource, OtlpProtocol, OtlpSettings};

    fn otlp(section: &str, env: &[(&str, &str)]) -> Option<OtlpSettings> {
        compile_yaml(&format!("version: 1\n{section}"), env)
            .unwrap()
            .telemetry
            .otlp
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(otlp("", &[]), None);
        assert_eq!(otlp("telemetry:\n  sample_ratio: 0.5\n", &[]), None);
    }

    #[test]
    fn the_file_sets_endpoint_protocol_ratio_and_queue() {
        let settings = otlp(
            "telemetry:\n  otlp_endpoint: http://collector:4317/\n  otlp_protocol: grpc\n  sample_ratio: 0.25\n  max_queue_spans: 100\n",
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
        )
        .unwrap();
        assert_eq!(settings.endpoint, "http://collector:4317");
        assert_eq!(settings.protocol, OtlpProtocol::Grpc, "the file wins");
        assert_eq!(settings.sample_ratio, 0.25);
        assert_eq!(settings.max_queue_spans, 100);
        assert_eq!(settings.service_name, "switchyard");
        assert_eq!(settings.source, EndpointSource::Config);
    }

    #[test]
    fn the_standard_variables_fill_in() {
        let settings = otlp(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_SERVICE_NAME", "gateway-eu"),
            ],
        )
        .unwrap();
        assert_eq!(settings.endpoint, "https://otel.example:4318");
        assert_eq!(settings.protocol, OtlpProtocol::Grpc);
        assert_eq!(settings.service_name, "gateway-eu");
        assert_eq!(settings.source, EndpointSource::Environment);
        let default = otlp("telemetry:\n  otlp_endpoint: http://c:4318\n", &[]).unwrap();
        assert_eq!(
            default.protocol,
            OtlpProtocol::HttpProtobuf,
            "OTLP's default"
        );
        assert_eq!(default.max_queue_spans, 2048);
        assert_eq!(default.sample_ratio, 1.0);
    }

    #[test]
    fn bad_values_are_refused_at_their_position() {
        let at = |section: &str| error_of(&format!("version: 1\ntelemetry:\n{section}"), &[]);
        let err = at("  otlp_endpoint: collector:4317\n");
        assert!(
            err.starts_with("routes.yaml:3:18: telemetry.otlp_endpoint"),
            "{err}"
        );
        let err = at("  otlp_endpoint: ftp://c:1\n");
        assert!(err.contains("http or https"), "{err}");
        let err = at("  otlp_endpoint: http://c:1\n  otlp_protocol: http/json\n");
        assert!(
            err.contains("routes.yaml:4:18: telemetry.otlp_protocol"),
            "{err}"
        );
        let err = at("  otlp_endpoint: http://c:1\n  sample_ratio: 1.5\n");
        assert!(
            err.contains("sample_ratio must be between 0 and 1"),
            "{err}"
        );
        let err = at("  otlp_endpoint: http://c:1\n  max_queue_spans: 0\n");
        assert!(err.contains("max_queue_spans"), "{err}");
        let err = at("  otlp_endpoints: http://c:1\n");
        assert!(
            err.contains("otlp_endpoints"),
            "unknown fields are refused: {err}"
        );
        let err = error_of(
            "version: 1\n",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:1"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
        );
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
    }
}
