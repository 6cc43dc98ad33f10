//! Reads a workload's platform token ([`TokenSource`]) when a `workload_identity` login asks for
//! it ([`tessera_core::Prompt::SubjectToken`]): a file, an environment variable, a URL, a command,
//! or GitHub Actions' OIDC token endpoint. Read afresh at every login, so a token the platform
//! rotated (a projected service-account token is renewed before it expires) is picked up.
//!
//! Errors name the source (`file:PATH`, `env:NAME`, the URL without its query, the command's first
//! word) and what went wrong; never the token, a header value, or what a command printed.

use std::time::Duration;

use tessera_core::flow::TokenSource;
use tessera_core::{Error, HttpRequest, Method, RequestId, Secret};
use zeroize::Zeroizing;

use crate::local_file::{self, FileKind};
use crate::transport::Transport;

/// GitHub Actions: where a job with `permissions: id-token: write` asks for its OIDC token.
const GITHUB_URL_VARIABLE: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token of that request.
const GITHUB_TOKEN_VARIABLE: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// The largest token a command may print (a JWT is a few KiB).
#[cfg(unix)]
const MAX_COMMAND_OUTPUT: usize = 64 << 10;

/// Reads the subject token from `source`, through `transport` for a URL (the provider's proxy,
/// roots and limits apply).
pub(crate) async fn read_subject_token(source: &TokenSource, transport: &dyn Transport) -> Result<Secret, Error> {
    let fail = |problem: String| Error::configuration(format!("subject_token: {} {problem}", source.describe()));
    let token = match source {
        TokenSource::File(path) => {
            let bytes = local_file::read(&crate::config::expand_home(path), FileKind::Secret)
                .map_err(|refused| fail(refused.problem))?;
            Zeroizing::new(String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".into()))?)
        }
        TokenSource::Env(name) => Zeroizing::new(variable(name).ok_or_else(|| fail("is not set (or empty)".into()))?),
        TokenSource::Url { url, headers, field } => {
            let mut resolved = Vec::with_capacity(headers.len());
            for (name, value) in headers {
                let value = match value.strip_prefix("env:") {
                    Some(variable_name) => variable(variable_name).ok_or_else(|| {
                        fail(format!("needs the variable {variable_name} for its {name} header: it is not set"))
                    })?,
                    None => value.clone(),
                };
                resolved.push((name.clone(), value));
            }
            fetch(transport, url, resolved, field.as_deref()).await?
        }
        TokenSource::GithubActions { audience } => {
            let missing = || {
                fail(format!(
                    "needs {GITHUB_URL_VARIABLE} and {GITHUB_TOKEN_VARIABLE}: run it in a GitHub Actions job \
                     with `permissions: id-token: write`"
                ))
            };
            let url = variable(GITHUB_URL_VARIABLE).ok_or_else(missing)?;
            let bearer = variable(GITHUB_TOKEN_VARIABLE).ok_or_else(missing)?;
            let mut url = url::Url::parse(&url).map_err(|_| fail(format!("{GITHUB_URL_VARIABLE} is not a URL")))?;
            if let Some(audience) = audience {
                url.query_pairs_mut().append_pair("audience", audience);
            }
            let headers = vec![("authorization".to_owned(), format!("bearer {bearer}"))];
            fetch(transport, url.as_str(), headers, Some("value")).await?
        }
        TokenSource::Exec { command, timeout } => run(command, *timeout).await.map_err(fail)?,
        _ => return Err(Error::internal("a subject token source this runtime cannot read")),
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(fail("gave an empty token".into()));
    }
    Ok(Secret::new(token))
}

/// A non-empty environment variable.
fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `GET url`; the body, or its JSON string field `field`.
async fn fetch(
    transport: &dyn Transport,
    url: &str,
    mut headers: Vec<(String, String)>,
    field: Option<&str>,
) -> Result<Zeroizing<String>, Error> {
    headers.push(("accept".into(), if field.is_some() { "application/json" } else { "*/*" }.into()));
    let request = HttpRequest { id: RequestId(0), method: Method::Get, url: url.to_owned(), headers, body: Vec::new() };
    let endpoint = request.endpoint();
    let response = transport.execute(request).await?;
    if response.status != 200 {
        return Err(Error::UnexpectedStatus {
            status: response.status,
            content_type: response.header("content-type").map(str::to_owned),
            retry_after: None,
            endpoint,
        });
    }
    let malformed = |problem: &str| Error::MalformedResponse { endpoint: endpoint.clone(), reason: problem.to_owned() };
    let body = std::str::from_utf8(&response.body).map_err(|_| malformed("the subject token is not UTF-8 text"))?;
    match field {
        None => Ok(Zeroizing::new(body.to_owned())),
        Some(field) => {
            let json: serde_json::Value = serde_json::from_str(body).map_err(|_| malformed("is not JSON"))?;
            json.get(field)
                .and_then(serde_json::Value::as_str)
                .map(|token| Zeroizing::new(token.to_owned()))
                .ok_or_else(|| malformed(&format!("has no string field {field:?}")))
        }
    }
}

/// Runs `command` with `sh -c`, stdin closed, and returns what it printed on stdout. Killed when
/// it outlives `timeout`; a failure says how it ended, never what it printed.
#[cfg(unix)]
async fn run(command: &str, timeout: Duration) -> Result<Zeroizing<String>, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        // A group of its own: on timeout the whole group is killed, not only `sh` (a command it
        // started would otherwise outlive the limit and hold the pipe open).
        .process_group(0)
        .spawn()
        .map_err(|error| format!("could not be started: {}", error.kind()))?;
    let group = child.id().and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("failed: {}", error.kind())),
        Err(_) => {
            if let Some(group) = group {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            return Err(format!("did not finish within {} s (subject_token_timeout)", timeout.as_secs()));
        }
    };
    if !output.status.success() {
        return Err(match output.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        });
    }
    if output.stdout.len() > MAX_COMMAND_OUTPUT {
        return Err(format!("printed more than {MAX_COMMAND_OUTPUT} bytes"));
    }
    String::from_utf8(output.stdout)
        .map(Zeroizing::new)
        .map_err(|_| "printed something that is not UTF-8 text".to_owned())
}

/// Windows: `exec:` is refused with this message. The command line is defined as `sh -c` (absent
/// on Windows), and the timeout's guarantee — the whole process tree killed, so that nothing
/// outlives the limit holding the pipe open — needs a job object there, which takes `unsafe`
/// Win32 calls the workspace forbids. Killing only the direct child would be a silent weakening.
#[cfg(not(unix))]
async fn run(_command: &str, _timeout: Duration) -> Result<Zeroizing<String>, String> {
    Err("cannot run on Windows (exec: needs `sh -c` and a process group to kill on timeout): \
         use file:, env:, url: or github-actions"
        .to_owned())
}
