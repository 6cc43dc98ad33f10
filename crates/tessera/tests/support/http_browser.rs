//! A browser that speaks HTTP to the reference IdP's login page: it opens the authorization URL,
//! fills in the login form as alice and follows the redirect to the loopback receiver, optionally
//! tampering with the request or the callback on the way, as an attacker in the browser could.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera::prompt::Prompter;
use tessera::{Error, Prompt};
use tessera_idp::demo;

pub type Tamper = fn(String) -> String;

/// Drives the reference IdP's `/authorize` page as a person would, then delivers the redirect to
/// the loopback receiver. `authorize` and `callback` may rewrite the URLs on the way.
pub struct HttpBrowser {
    authorize: Tamper,
    callback: Tamper,
    /// (authorization URL as tessera built it, redirect URI, callback URL delivered).
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl HttpBrowser {
    pub fn new(authorize: Tamper, callback: Tamper) -> Arc<Self> {
        Arc::new(HttpBrowser { authorize, callback, seen: Arc::default() })
    }

    pub fn honest() -> Arc<Self> {
        Self::new(|url| url, |url| url)
    }

    pub fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Prompter for HttpBrowser {
    async fn show(&self, _key: &str, prompt: &Prompt) -> Result<(), Error> {
        let Prompt::Browser { authorization_url, redirect_uri } = prompt else {
            panic!("only browser prompts here: {prompt:?}");
        };
        let (authorization_url, redirect_uri) = (authorization_url.clone(), redirect_uri.clone());
        let (authorize, callback, seen) = (self.authorize, self.callback, self.seen.clone());
        // `show` must return quickly: the person "uses the browser" while the receiver waits.
        tokio::spawn(async move {
            let http = no_redirects();
            let page = http.get(authorize(authorization_url.clone())).send().await.expect("login page");
            assert_eq!(page.status(), 200, "the IdP accepted the authorization request");
            let html = page.text().await.unwrap();
            let request_id = attribute_after(&html, "name=\"request_id\"", "value").expect("request_id on the page");
            let origin = authorization_url.split("/authorize").next().unwrap().to_owned();
            let answer = http
                .post(format!("{origin}/authorize"))
                .form(&[
                    ("request_id", request_id.as_str()),
                    ("username", demo::ALICE_USERNAME),
                    ("password", demo::ALICE_PASSWORD),
                    ("action", "sign-in"),
                ])
                .send()
                .await
                .expect("login form");
            assert!(answer.status().is_redirection(), "signed in: {}", answer.status());
            let location = answer.headers()["location"].to_str().unwrap().to_owned();
            let delivered = callback(location);
            seen.lock().unwrap().push((authorization_url, redirect_uri, delivered.clone()));
            let _ = http.get(&delivered).send().await;
        });
        Ok(())
    }
}

/// The value of attribute `name` in the tag that contains `marker`.
pub fn attribute_after(html: &str, marker: &str, name: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_end = at + html[at..].find('>')?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_end];
    let value_at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(tag[value_at..value_at + tag[value_at..].find('"')?].to_owned())
}

pub fn no_redirects() -> reqwest::Client {
    let _ = super::http_client(); // installs the crypto provider
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
