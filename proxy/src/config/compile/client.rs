//! `server:` settings of the client side: connection timeouts and limits, the shutdown grace
//! period, and `server.tls` (whose certificate is loaded here, so `--check` and a reload
//! catch a broken one). docs/configuration.md lists them; docs/operations.md says how they act.

use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::{location_of, Ctx};
use crate::config::error::Problem;
use crate::config::policy::{ClientSettings, TlsSettings};
use crate::config::raw::{RawServer, RawTls};
use crate::config::units;
use crate::listener::certificate;

const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KEEPALIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CLIENT_CONNECTIONS: i64 = 4096;
const DEFAULT_MAX_HEADER_BYTES: u64 = 64 << 10;
/// pingora refuses a header block past 1 MiB - 1 before we see it.
const MAX_HEADER_BYTES_CEILING: u64 = (1 << 20) - 1;
const MIN_HEADER_BYTES: u64 = 1 << 10;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(super) fn client(ctx: &Ctx<'_>, raw: &RawServer) -> Result<ClientSettings, Problem> {
    Ok(ClientSettings {
        header_read_timeout: ctx.duration_or(
            raw.header_read_timeout.as_ref(),
            "server.header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT,
        )?,
        keepalive_idle_timeout: ctx.duration_or(
            raw.keepalive_idle_timeout.as_ref(),
            "server.keepalive_idle_timeout",
            DEFAULT_KEEPALIVE_IDLE_TIMEOUT,
        )?,
        body_read_timeout: ctx.duration_or(
            raw.body_read_timeout.as_ref(),
            "server.body_read_timeout",
            DEFAULT_BODY_READ_TIMEOUT,
        )?,
        max_connections: max_client_connections(raw.max_client_connections.as_ref())?,
        max_header_bytes: max_header_bytes(ctx, raw.max_header_bytes.as_ref())?,
        shutdown_grace: ctx.duration_or(
            raw.shutdown_grace.as_ref(),
            "server.shutdown_grace",
            DEFAULT_SHUTDOWN_GRACE,
        )?,
    })
}

fn max_client_connections(value: Option<&Spanned<i64>>) -> Result<usize, Problem> {
    let count = value.map_or(DEFAULT_MAX_CLIENT_CONNECTIONS, |value| value.value);
    match usize::try_from(count) {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(Problem::at(
            location_of(value),
            format!("server.max_client_connections must be 1 or more, not {count}"),
        )),
    }
}

fn max_header_bytes(ctx: &Ctx<'_>, value: Option<&Spanned<String>>) -> Result<usize, Problem> {
    const WHAT: &str = "server.max_header_bytes";
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_HEADER_BYTES as usize);
    };
    let text = ctx.text(value, WHAT)?;
    let bytes = units::parse_size(&text)
        .map_err(|err| Problem::spanned(value, format!("{WHAT}: {err}")))?;
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES_CEILING).contains(&bytes) {
        return Err(Problem::spanned(
            value,
            format!("{WHAT} must be between 1KiB and 1MiB - 1 byte (pingora's own ceiling)"),
        ));
    }
    Ok(bytes as usize)
}

pub(super) fn tls(ctx: &Ctx<'_>, raw: Option<&RawTls>) -> Result<Option<TlsSettings>, Problem> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let cert_file = ctx
        .base_dir
        .join(ctx.text(&raw.cert_file, "server.tls.cert_file")?);
    let key_file = ctx
        .base_dir
        .join(ctx.text(&raw.key_file, "server.tls.key_file")?);
    let certificate = certificate::load(&cert_file, &key_file)
        .map_err(|err| Problem::spanned(&raw.cert_file, format!("server.tls: {err}")))?;
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        certificate: Arc::new(certificate),
    }))
}

/// Whether a listen address is on this host only.
pub(super) fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::is_loopback;
    use crate::config::testing::{compile_yaml, error_of};
    use crate::config::ConfigError;

    #[test]
    fn client_defaults() -> Result<(), ConfigError> {
        let client = compile_yaml("version: 1\n", &[])?.server.client;
        assert_eq!(client.header_read_timeout, Duration::from_secs(10));
        assert_eq!(client.keepalive_idle_timeout, Duration::from_secs(60));
        assert_eq!(client.body_read_timeout, Duration::from_secs(60));
        assert_eq!(client.max_connections, 4096);
        assert_eq!(client.max_header_bytes, 64 * 1024);
        assert_eq!(client.shutdown_grace, Duration::from_secs(30));
        Ok(())
    }

    #[test]
    fn client_values_are_parsed() -> Result<(), ConfigError> {
        let yaml = "version: 1\nserver:\n  header_read_timeout: 2s\n  keepalive_idle_timeout: 5s\n  body_read_timeout: 3s\n  max_client_connections: 50\n  max_header_bytes: 16KiB\n  shutdown_grace: 1m\n";
        let client = compile_yaml(yaml, &[])?.server.client;
        assert_eq!(client.header_read_timeout, Duration::from_secs(2));
        assert_eq!(client.keepalive_idle_timeout, Duration::from_secs(5));
        assert_eq!(client.body_read_timeout, Duration::from_secs(3));
        assert_eq!(client.max_connections, 50);
        assert_eq!(client.max_header_bytes, 16 * 1024);
        assert_eq!(client.shutdown_grace, Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn bad_client_values_point_at_themselves() {
        for (line, expected) in [
            (
                "  max_client_connections: 0\n",
                "routes.yaml:3:27: server.max_client_connections must be 1 or more, not 0",
            ),
            (
                "  max_header_bytes: 2MiB\n",
                "routes.yaml:3:21: server.max_header_bytes must be between 1KiB and 1MiB - 1 byte",
            ),
            (
                "  body_read_timeout: 0s\n",
                "routes.yaml:3:22: server.body_read_timeout must be longer than 0",
            ),
            (
                "  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n",
                "routes.yaml:4:16: server.tls: cannot read /nonexistent/cert.pem",
            ),
        ] {
            let error = error_of(&format!("version: 1\nserver:\n{line}"), &[]);
            assert!(error.starts_with(expected), "{line}: {error}");
        }
    }

    #[test]
    fn an_open_admin_port_off_loopback_is_refused() {
        let error = error_of("version: 1\nserver:\n  admin_listen: 0.0.0.0:9090\n", &[]);
        assert!(
            error.starts_with("routes.yaml:3:17: server.admin_listen 0.0.0.0:9090 is not a loopback address and no server.admin_token is set"),
            "{error}"
        );
        let with_token = compile_yaml(
            "version: 1\nserver:\n  admin_listen: 0.0.0.0:9090\n  admin_token: t0ken\n",
            &[],
        );
        assert!(with_token.is_ok());
    }

    #[test]
    fn loopback_addresses() {
        for address in [
            "127.0.0.1:9090",
            "127.1.2.3:1",
            "[::1]:9090",
            "localhost:9090",
        ] {
            assert!(is_loopback(address), "{address}");
        }
        for address in [
            "0.0.0.0:9090",
            "[::]:9090",
            "10.0.0.1:9090",
            "example.com:1",
        ] {
            assert!(!is_loopback(address), "{address}");
        }
    }
}
