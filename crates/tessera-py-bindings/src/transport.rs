//! The transport keywords of `ProviderConfig`, `Client` and `SyncClient` (`ca_file`, `ca_file_only`,
//! `tls_client_certificate`, `tls_client_key`, `proxy`, `no_proxy`, `timeout`, `allow_insecure_http`, `user_agent`): the transport fields of the
//! one provider description, checked by its rules ([`TransportSpec::validate`]), mapped onto the
//! session's [`TransportSettings`].

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use tessera::core::provider_spec::TransportSpec;
use tessera::transport::TransportSettings;

use crate::errors::{configuration, to_pyerr};
use crate::time::Seconds;

/// The transport keywords as given (unset: `None` / `false`).
#[derive(Clone, Default)]
pub struct Transport {
    ca_file: Option<PathBuf>,
    ca_file_only: bool,
    tls_client_certificate: Option<PathBuf>,
    tls_client_key: Option<PathBuf>,
    proxy: Option<String>,
    no_proxy: Option<String>,
    timeout: Option<Duration>,
    allow_insecure_http: bool,
    user_agent: Option<String>,
}

impl Transport {
    /// The transport keywords of `Client` / `SyncClient` (and `ProviderConfig`), checked.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ca_file: Option<PathBuf>,
        ca_file_only: bool,
        (tls_client_certificate, tls_client_key): (Option<PathBuf>, Option<PathBuf>),
        proxy: Option<String>,
        no_proxy: Option<String>,
        timeout: Option<Seconds<'_>>,
        allow_insecure_http: bool,
        user_agent: Option<String>,
    ) -> PyResult<Self> {
        let timeout = timeout.map(|timeout| timeout.duration()).transpose()?;
        if timeout.is_some_and(|timeout| timeout < Duration::from_millis(1)) {
            return Err(configuration("timeout must be positive"));
        }
        Ok(Transport {
            ca_file,
            ca_file_only,
            tls_client_certificate,
            tls_client_key,
            proxy,
            no_proxy,
            timeout,
            allow_insecure_http,
            user_agent,
        })
    }

    /// True when a TLS client certificate is given.
    pub(crate) fn has_certificate(&self) -> bool {
        self.tls_client_certificate.is_some()
    }

    /// These keywords over `base` (a `ProviderConfig`'s): what is given here wins.
    pub(crate) fn over(self, base: &Transport) -> Transport {
        // The certificate and its key go together: both from here, or both from `base`.
        let (tls_client_certificate, tls_client_key) =
            if self.tls_client_certificate.is_some() || self.tls_client_key.is_some() {
                (self.tls_client_certificate, self.tls_client_key)
            } else {
                (base.tls_client_certificate.clone(), base.tls_client_key.clone())
            };
        Transport {
            ca_file: self.ca_file.or_else(|| base.ca_file.clone()),
            ca_file_only: self.ca_file_only || base.ca_file_only,
            tls_client_certificate,
            tls_client_key,
            proxy: self.proxy.or_else(|| base.proxy.clone()),
            no_proxy: self.no_proxy.or_else(|| base.no_proxy.clone()),
            timeout: self.timeout.or(base.timeout),
            allow_insecure_http: self.allow_insecure_http || base.allow_insecure_http,
            user_agent: self.user_agent.or_else(|| base.user_agent.clone()),
        }
    }

    /// The session's settings, after the description's rules (errors name `place` and the field,
    /// never a value: a proxy URL may hold a password).
    pub(crate) fn settings(&self, place: &str) -> PyResult<TransportSettings> {
        let spec = TransportSpec {
            ca_file: self.ca_file.as_ref().map(|path| path.to_string_lossy().into_owned()),
            ca_file_only: self.ca_file_only,
            tls_client_certificate: self
                .tls_client_certificate
                .as_ref()
                .map(|path| path.to_string_lossy().into_owned()),
            tls_client_key: self.tls_client_key.as_ref().map(|path| path.to_string_lossy().into_owned()),
            proxy: self.proxy.clone(),
            no_proxy: self.no_proxy.clone(),
            timeout_secs: None,
            allow_insecure_http: self.allow_insecure_http,
            user_agent: self.user_agent.clone(),
        };
        spec.validate().map_err(|error| to_pyerr(&error.at(place)))?;
        let mut settings = TransportSettings::from_spec(&spec);
        if let Some(timeout) = self.timeout {
            settings.timeout = timeout;
            settings.connect_timeout = settings.connect_timeout.min(timeout);
        }
        Ok(settings)
    }

    /// The first keyword given that only tessera's own HTTP client reads (`transport=` replaces
    /// that client: `timeout` and `allow_insecure_http` still apply around it).
    pub(crate) fn only_for_tessera_client(&self) -> Option<&'static str> {
        [
            ("ca_file", self.ca_file.is_some()),
            ("ca_file_only", self.ca_file_only),
            ("tls_client_certificate", self.tls_client_certificate.is_some()),
            ("tls_client_key", self.tls_client_key.is_some()),
            ("proxy", self.proxy.is_some()),
            ("no_proxy", self.no_proxy.is_some()),
            ("user_agent", self.user_agent.is_some()),
        ]
        .into_iter()
        .find_map(|(field, given)| given.then_some(field))
    }

    /// `, proxy='http://me:***@proxy:3128', ...` for `__repr__`: the keywords that are set.
    pub(crate) fn repr(&self) -> String {
        let mut out = String::new();
        if let Some(path) = &self.ca_file {
            out.push_str(&format!(", ca_file={}", crate::quote(&path.to_string_lossy())));
        }
        if self.ca_file_only {
            out.push_str(", ca_file_only=True");
        }
        if let Some(path) = &self.tls_client_certificate {
            out.push_str(&format!(", tls_client_certificate={}", crate::quote(&path.to_string_lossy())));
        }
        if let Some(path) = &self.tls_client_key {
            out.push_str(&format!(", tls_client_key={}", crate::quote(&path.to_string_lossy())));
        }
        if let Some(proxy) = &self.proxy {
            out.push_str(&format!(", proxy={}", crate::quote(&tessera::core::provider_spec::redact_url(proxy))));
        }
        if let Some(no_proxy) = &self.no_proxy {
            out.push_str(&format!(", no_proxy={}", crate::quote(no_proxy)));
        }
        if let Some(timeout) = self.timeout {
            out.push_str(&format!(", timeout={}", timeout.as_secs_f64()));
        }
        if self.allow_insecure_http {
            out.push_str(", allow_insecure_http=True");
        }
        if let Some(agent) = &self.user_agent {
            out.push_str(&format!(", user_agent={}", crate::quote(agent)));
        }
        out
    }
}
