//! Test harness for cognito-local (`interop/cognito-local`, an Amazon Cognito user-pool emulator).
//!
//! Include it with `#[path = "support/cognito_local.rs"] mod cognito_local;`. It needs `node` on
//! `PATH` (or in `$NODE`) and `npm ci` run once in `interop/cognito-local`.
//!
//! Each [`CognitoLocal`] is its own server in its own temp directory (state in `.cognito/`), on an
//! ephemeral 127.0.0.1 port; it is killed on drop (and exits by itself if this process dies, when
//! its stdin closes). Its stdout is captured: one-time codes it "sends" are read from there.
//!
//! What cognito-local supports, as found in its source (5.3.0): `USER_PASSWORD_AUTH` and
//! `REFRESH_TOKEN_AUTH` only (no `CUSTOM_AUTH`, no `EMAIL_OTP`); `SMS_MFA` only for users with a
//! legacy `MFAOptions` entry, which no API it implements can set (`AdminSetUserSettings` and
//! `AdminSetUserMFAPreference` are missing), so [`CognitoLocal::enable_sms_mfa`] writes it into the
//! pool's data file; `SOFTWARE_TOKEN_MFA` through `AssociateSoftwareToken` + `VerifySoftwareToken`
//! with an access token; `RevokeToken`. It never checks `SECRET_HASH`, and its login answers carry
//! no `ExpiresIn` (the JWT's `exp` says it).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long [`CognitoLocal::start`] waits for the server's "running on" line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `<workspace>/interop/cognito-local`.
pub fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/cognito-local");
    dir.canonicalize().unwrap_or(dir)
}

/// A running cognito-local.
pub struct CognitoLocal {
    child: Child,
    /// Kept open: the server exits when it closes.
    stdin: Option<ChildStdin>,
    endpoint: String,
    output: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// An app client.
#[derive(Clone, Debug)]
pub struct AppClient {
    /// `ClientId`.
    pub id: String,
    /// `ClientSecret`, when created with `GenerateSecret`.
    pub secret: Option<String>,
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Starts `node start.cjs` in `dir` on `port` (0: any) and waits for its "running on" line.
fn spawn(dir: &Path, port: u16, output: &Arc<Mutex<String>>) -> (Child, Option<ChildStdin>, u16) {
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let mark = output.lock().unwrap().len();
    let mut child = Command::new(&node)
        .arg(interop_dir().join("start.cjs"))
        .current_dir(dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("EXIT_ON_STDIN_CLOSE", "1")
        .env_remove("CODE")
        .env_remove("DEBUG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start cognito-local with {node:?}: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let sink = Arc::clone(output);
    std::thread::Builder::new()
        .name("cognito-local-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&strip_ansi(&line));
                line.clear();
            }
        })
        .expect("stdout reader thread");

    const READY: &str = "running on http://127.0.0.1:";
    let started = Instant::now();
    loop {
        let found = {
            let text = output.lock().unwrap();
            let recent = text.get(mark..).unwrap_or_default();
            recent
                .find(READY)
                .map(|at| recent[at + READY.len()..].chars().take_while(char::is_ascii_digit).collect::<String>())
        };
        if let Some(port) = found.and_then(|p| p.parse::<u16>().ok()) {
            return (child, stdin, port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cognito-local exited ({status}) before listening:\n{}", output.lock().unwrap());
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            panic!("cognito-local did not listen within {READY_TIMEOUT:?}:\n{}", output.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl CognitoLocal {
    /// Starts `node start.cjs` in a new temp dir and waits (bounded) until it listens.
    pub fn start() -> CognitoLocal {
        let interop = interop_dir();
        assert!(
            interop.join("node_modules/cognito-local/package.json").is_file(),
            "cognito-local is not installed: run `npm ci` in {}",
            interop.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Arc::new(Mutex::new(String::new()));
        let (child, stdin, port) = spawn(dir.path(), 0, &output);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .expect("reqwest client");
        CognitoLocal { child, stdin, endpoint: format!("http://127.0.0.1:{port}/"), output, dir, http }
    }

    fn port(&self) -> u16 {
        self.endpoint.trim_end_matches('/').rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server, lets `edit` change its data directory, and starts it again on the same
    /// port (cognito-local reads its pools from disk only at startup).
    fn restart_with(&mut self, edit: impl FnOnce(&Path)) {
        self.stop();
        edit(&self.dir.path().join(".cognito/db"));
        let (child, stdin, port) = spawn(self.dir.path(), self.port(), &self.output);
        assert_eq!(port, self.port(), "restarted on the same port");
        self.child = child;
        self.stdin = stdin;
    }

    /// `http://127.0.0.1:<port>/`: what [`tessera::Grant::Cognito`]'s `endpoint` takes.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls an operation; `Ok(body)` on 2xx, else `Err((status, body))`.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value, (u16, Value)> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("AWSCognitoIdentityProviderService.{operation}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{operation}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) { Ok(value) } else { Err((status, value)) }
    }

    async fn admin(&self, operation: &str, body: Value) -> Value {
        self.call(operation, body).await.unwrap_or_else(|(status, body)| panic!("{operation}: {status} {body}"))
    }

    /// A user pool with `MfaConfiguration` `OFF`, `OPTIONAL` or `ON`; returns its id.
    pub async fn create_user_pool(&self, mfa: &str) -> String {
        let pool = self.admin("CreateUserPool", json!({ "PoolName": "tessera", "MfaConfiguration": mfa })).await;
        pool["UserPool"]["Id"].as_str().expect("pool id").to_owned()
    }

    /// An app client allowing `USER_PASSWORD_AUTH` and refresh, with or without a secret.
    pub async fn create_app_client(&self, pool_id: &str, with_secret: bool) -> AppClient {
        let client = self
            .admin(
                "CreateUserPoolClient",
                json!({
                    "UserPoolId": pool_id,
                    "ClientName": if with_secret { "confidential" } else { "public" },
                    "GenerateSecret": with_secret,
                    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                }),
            )
            .await;
        AppClient {
            id: client["UserPoolClient"]["ClientId"].as_str().expect("client id").to_owned(),
            secret: client["UserPoolClient"]["ClientSecret"].as_str().map(str::to_owned),
        }
    }

    /// `AdminCreateUser` (no welcome message) then `AdminSetUserPassword` with `Permanent`.
    pub async fn create_user(&self, pool_id: &str, username: &str, password: &str, attributes: &[(&str, &str)]) {
        let attributes: Vec<Value> =
            attributes.iter().map(|(name, value)| json!({ "Name": name, "Value": value })).collect();
        self.admin(
            "AdminCreateUser",
            json!({
                "UserPoolId": pool_id,
                "Username": username,
                "TemporaryPassword": "Temp-Passw0rd!",
                "MessageAction": "SUPPRESS",
                "UserAttributes": attributes,
            }),
        )
        .await;
        self.admin(
            "AdminSetUserPassword",
            json!({ "UserPoolId": pool_id, "Username": username, "Password": password, "Permanent": true }),
        )
        .await;
    }

    /// Turns on TOTP for a user the way an app does: log in, `AssociateSoftwareToken`,
    /// `VerifySoftwareToken` with a real code, `SetUserMFAPreference`. Returns the base32 secret.
    pub async fn enable_totp(&self, client: &AppClient, username: &str, password: &str) -> String {
        let mut parameters = json!({ "USERNAME": username, "PASSWORD": password });
        if let Some(secret) = &client.secret {
            parameters["SECRET_HASH"] = json!(
                tessera::core::protocol::cognito::secret_hash(
                    &tessera::Secret::new(secret.as_str()),
                    username,
                    &client.id
                )
                .expose_secret()
            );
        }
        let login = self
            .admin(
                "InitiateAuth",
                json!({ "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client.id, "AuthParameters": parameters }),
            )
            .await;
        let access_token = login["AuthenticationResult"]["AccessToken"].as_str().expect("logged in").to_owned();
        let associated = self.admin("AssociateSoftwareToken", json!({ "AccessToken": access_token })).await;
        let secret = associated["SecretCode"].as_str().expect("SecretCode").to_owned();
        let code = tessera::core::flow::totp_code(&tessera::Secret::new(secret.as_str()), tessera::clock::system_now())
            .expect("valid base32");
        self.admin(
            "VerifySoftwareToken",
            json!({ "AccessToken": access_token, "UserCode": code.expose_secret(), "FriendlyDeviceName": "phone" }),
        )
        .await;
        self.admin(
            "SetUserMFAPreference",
            json!({
                "AccessToken": access_token,
                "SoftwareTokenMfaSettings": { "Enabled": true, "PreferredMfa": true },
            }),
        )
        .await;
        secret
    }

    fn pool_file(&self, pool_id: &str) -> PathBuf {
        self.dir.path().join(".cognito/db").join(format!("{pool_id}.json"))
    }

    /// Gives a user (with a `phone_number`) SMS MFA. cognito-local reads it only from the legacy
    /// `MFAOptions` field, which none of its operations sets: the server is stopped, the field
    /// written into the pool's data file, and the server started again (same port, same data);
    /// then `AdminGetUser` must show it.
    pub async fn enable_sms_mfa(&mut self, pool_id: &str, username: &str) {
        let path = self.pool_file(pool_id);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Writes are asynchronous: wait until the permanent password is on disk before stopping.
        loop {
            let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            if serde_json::from_str::<Value>(&text).is_ok_and(|db| db["Users"][username]["UserStatus"] == "CONFIRMED") {
                break;
            }
            assert!(Instant::now() < deadline, "user {username} not confirmed in {}:\n{text}", path.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let username_owned = username.to_owned();
        self.restart_with(move |_| {
            let mut db: Value = serde_json::from_slice(&std::fs::read(&path).expect("read pool file")).expect("JSON");
            db["Users"][&username_owned]["MFAOptions"] =
                json!([{ "DeliveryMedium": "SMS", "AttributeName": "phone_number" }]);
            std::fs::write(&path, serde_json::to_vec_pretty(&db).unwrap()).expect("write pool file");
        });
        let user = self.admin("AdminGetUser", json!({ "UserPoolId": pool_id, "Username": username })).await;
        assert_eq!(user["MFAOptions"][0]["DeliveryMedium"], "SMS", "cognito-local sees the SMS MFA option: {user}");
    }

    /// How much output there is so far: pass it to [`CognitoLocal::code_after`].
    pub fn output_mark(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// The first one-time code printed after `mark` (cognito-local's "Confirmation Code Delivery"
    /// box), waiting at most 10 s.
    pub async fn code_after(&self, mark: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let output = self.output.lock().unwrap();
                let recent = output.get(mark..).unwrap_or_default();
                if let Some(at) = recent.find("Code:") {
                    let code: String =
                        recent[at + 5..].trim_start().chars().take_while(char::is_ascii_alphanumeric).collect();
                    if !code.is_empty() {
                        return code;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no code printed:\n{}", self.output.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for CognitoLocal {
    fn drop(&mut self) {
        self.stop();
    }
}
