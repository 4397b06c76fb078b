//! The OTLP span, metric and log record exporters (feature `otlp`): gRPC through tonic, HTTP
//! (protobuf or JSON) through hyper, TLS through rustls (ring) for both.

use std::time::Duration;

use super::{OtlpConfig, PipelineError};

/// Why the last export failed, in more words than the SDK's error keeps (its HTTP
/// exporter says only "network error"): filled by the HTTP client, read by the
/// exporter that logs the failure.
pub(super) type Detail = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// An OTLP span exporter as `config` says, with `timeout` per export.
#[cfg(feature = "otlp")]
pub(super) fn exporter(
    config: &OtlpConfig,
    timeout: Duration,
    detail: &Detail,
) -> Result<opentelemetry_otlp::SpanExporter, PipelineError> {
    use super::OtlpProtocol;

    // Both transports run their connections on the runtime they are created in.
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
    let tls = Tls::read(config)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder();
    let built = match config.protocol {
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => http(
            exporter.with_http(),
            config,
            timeout,
            &tls,
            runtime,
            Some(detail),
        )?
        .build(),
        _ => grpc(exporter.with_tonic(), config, timeout, &tls)?.build(),
    };
    built.map_err(|e| PipelineError::Exporter(e.to_string()))
}

/// An OTLP metric exporter as `config` says (feature `otlp`).
#[cfg(feature = "otlp")]
pub(super) fn metric_exporter(
    config: &super::OtlpMetricsConfig,
) -> Result<opentelemetry_otlp::MetricExporter, PipelineError> {
    use super::{OtlpProtocol, Temporality};
    use opentelemetry_sdk::metrics::Temporality as Sdk;

    let runtime = tokio::runtime::Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
    let otlp = &config.otlp;
    let tls = Tls::read(otlp)?;
    let temporality = match config.temporality {
        Temporality::Delta => Sdk::Delta,
        Temporality::LowMemory => Sdk::LowMemory,
        _ => Sdk::Cumulative,
    };
    let exporter = opentelemetry_otlp::MetricExporter::builder().with_temporality(temporality);
    let built = match otlp.protocol {
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => http(
            exporter.with_http(),
            otlp,
            otlp.timeout,
            &tls,
            runtime,
            None,
        )?
        .build(),
        _ => grpc(exporter.with_tonic(), otlp, otlp.timeout, &tls)?.build(),
    };
    built.map_err(|e| PipelineError::Exporter(e.to_string()))
}

/// An OTLP log record exporter as `config` says, with `timeout` per export.
#[cfg(feature = "otlp")]
pub(super) fn log_exporter(
    config: &OtlpConfig,
    timeout: Duration,
) -> Result<opentelemetry_otlp::LogExporter, PipelineError> {
    use super::OtlpProtocol;

    let runtime = tokio::runtime::Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
    let tls = Tls::read(config)?;
    let exporter = opentelemetry_otlp::LogExporter::builder();
    let built = match config.protocol {
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
            http(exporter.with_http(), config, timeout, &tls, runtime, None)?.build()
        }
        _ => grpc(exporter.with_tonic(), config, timeout, &tls)?.build(),
    };
    built.map_err(|e| PipelineError::Exporter(e.to_string()))
}

/// Without the `otlp` feature an OTLP endpoint cannot be served.
#[cfg(not(feature = "otlp"))]
pub(super) fn exporter(
    _config: &OtlpConfig,
    _timeout: Duration,
    _detail: &Detail,
) -> Result<super::MemoryExporter, PipelineError> {
    Err(PipelineError::OtlpDisabled)
}

/// The PEM files the TLS settings name, read once at start.
#[cfg(feature = "otlp")]
struct Tls {
    ca: Option<Vec<u8>>,
    /// Client certificate and key.
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

#[cfg(feature = "otlp")]
impl Tls {
    fn read(config: &OtlpConfig) -> Result<Self, PipelineError> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                PipelineError::Exporter(format!(
                    "the {what} {} cannot be read: {e}",
                    path.display()
                ))
            })
        };
        let ca = match &config.certificate {
            Some(path) => Some(read("CA certificate", path)?),
            None => None,
        };
        let identity = match (&config.client_certificate, &config.client_key) {
            (Some(certificate), Some(key)) => Some((
                read("client certificate", certificate)?,
                read("client key", key)?,
            )),
            (None, None) => None,
            _ => {
                return Err(PipelineError::Exporter(
                    "a client certificate needs its key, and a key its certificate".to_owned(),
                ))
            }
        };
        Ok(Self { ca, identity })
    }
}

/// `key: value` pairs checked as header names and values; the error names the pair's
/// position, never its value (usually a credential).
#[cfg(feature = "otlp")]
fn checked_headers(
    headers: &[(String, String)],
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, PipelineError> {
    headers
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let name = http::HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes()).map_err(
                |_| PipelineError::Exporter(format!("header {} has an invalid name", i + 1)),
            )?;
            let value = http::HeaderValue::from_str(value).map_err(|_| {
                PipelineError::Exporter(format!("header {} has an invalid value", i + 1))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// gRPC metadata, compression and TLS as `config` says, on a span or metric
/// exporter's builder.
#[cfg(feature = "otlp")]
fn grpc<B>(
    builder: B,
    config: &OtlpConfig,
    timeout: Duration,
    tls: &Tls,
) -> Result<B, PipelineError>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithTonicConfig,
{
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let mut metadata = tonic::metadata::MetadataMap::new();
    for (name, value) in checked_headers(&config.headers)? {
        let key = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes())
            .map_err(|_| PipelineError::Exporter(format!("header {name} is not gRPC metadata")))?;
        let value = tonic::metadata::MetadataValue::try_from(value.as_bytes())
            .map_err(|_| PipelineError::Exporter(format!("header {name} has an invalid value")))?;
        metadata.insert(key, value);
    }
    let mut builder = builder
        .with_endpoint(&config.endpoint)
        .with_timeout(timeout)
        .with_metadata(metadata);
    if config.compression == super::OtlpCompression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if config.endpoint.starts_with("https://") {
        let mut tls_config = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &tls.ca {
            tls_config = tls_config.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((certificate, key)) = &tls.identity {
            tls_config = tls_config.identity(Identity::from_pem(certificate, key));
        }
        builder = builder.with_tls_config(tls_config);
    }
    Ok(builder)
}

/// Headers, compression, TLS and a client on the runtime, as `config` says, on a span
/// or metric exporter's builder.
#[cfg(feature = "otlp")]
fn http<B>(
    builder: B,
    config: &OtlpConfig,
    timeout: Duration,
    tls: &Tls,
    runtime: tokio::runtime::Handle,
    detail: Option<&Detail>,
) -> Result<B, PipelineError>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithHttpConfig,
{
    let headers = checked_headers(&config.headers)?
        .into_iter()
        .map(|(name, value)| {
            // Checked above: a valid header value is visible ASCII.
            (
                name.to_string(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls_config(tls)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let client = opentelemetry_http::hyper::HyperClient::new(connector, timeout, None);
    let mut builder = builder
        .with_protocol(match config.protocol {
            super::OtlpProtocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
            _ => opentelemetry_otlp::Protocol::HttpBinary,
        })
        .with_endpoint(&config.endpoint)
        .with_timeout(timeout)
        .with_headers(headers)
        .with_http_client(OnRuntime {
            runtime,
            client: std::sync::Arc::new(client),
            detail: detail.cloned(),
        });
    if config.compression == super::OtlpCompression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(builder)
}

/// rustls settings for HTTPS: the system's roots and the configured CA; the client
/// certificate when one is configured.
#[cfg(feature = "otlp")]
fn rustls_config(tls: &Tls) -> Result<rustls::ClientConfig, PipelineError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn invalid(what: &'static str) -> impl Fn(rustls::pki_types::pem::Error) -> PipelineError {
        move |e| PipelineError::Exporter(format!("the {what} is not valid PEM: {e}"))
    }
    let mut roots = rustls::RootCertStore::empty();
    // A system without a certificate store still works with a configured CA.
    for certificate in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(certificate);
    }
    if let Some(ca) = &tls.ca {
        for certificate in CertificateDer::pem_slice_iter(ca) {
            let certificate = certificate.map_err(invalid("CA certificate"))?;
            roots
                .add(certificate)
                .map_err(|e| PipelineError::Exporter(format!("the CA certificate: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PipelineError::Exporter(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match &tls.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((certificate, key)) => {
            let chain = CertificateDer::pem_slice_iter(certificate)
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid("client certificate"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(invalid("client key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| PipelineError::Exporter(format!("the client certificate: {e}")))
        }
    }
}

/// The TLS crypto of the HTTP exporters: the application's process-wide provider when
/// it installed one (`rustls::crypto::CryptoProvider::install_default`, for example
/// aws-lc-rs for post-quantum key exchange), else *ring*, which the toolkit builds with
/// because it needs no C toolchain or assembler beyond a C compiler.
#[cfg(feature = "otlp")]
fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return std::sync::Arc::clone(installed);
    }
    // rustls 0.23.48 deprecates *ring*'s provider because *ring* has no post-quantum key
    // exchange; it is still maintained and secure for the classical groups. Install
    // aws-lc-rs as the process default to have the hybrid groups.
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    std::sync::Arc::new(ring)
}

/// An HTTP client whose requests run on the runtime it was made on: the SDK's batch
/// processor exports from a thread of its own, outside any runtime, where hyper
/// cannot open a connection.
#[cfg(feature = "otlp")]
#[derive(Debug)]
struct OnRuntime<C> {
    runtime: tokio::runtime::Handle,
    client: std::sync::Arc<C>,
    /// Where the cause of a failure goes for the span exporter's log line.
    detail: Option<Detail>,
}

#[cfg(feature = "otlp")]
#[async_trait::async_trait]
impl<C: opentelemetry_http::HttpClient + 'static> opentelemetry_http::HttpClient for OnRuntime<C> {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = std::sync::Arc::clone(&self.client);
        // A runtime already shut down drops the task: the export fails, counted.
        let sent = self
            .runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as opentelemetry_http::HttpError)
            .and_then(|sent| sent);
        if let (Err(e), Some(detail)) = (&sent, &self.detail) {
            // The whole chain: "client error (Connect)" says little, the TLS cause
            // under it (an unknown issuer, an expired certificate) says what to fix.
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            if let Ok(mut slot) = detail.lock() {
                *slot = Some(text);
            }
        }
        sent
    }
}
