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
/// the loopback receiver (`show`), or returns it as the pasted answer (`ask`, paste mode).
/// `authorize` and `callback` may rewrite the URLs on the way. With `forge_first`, the rewritten
/// callback is delivered first (as a hostile page would), then the real one.
pub struct HttpBrowser {
    authorize: Tamper,
    callback: Tamper,
    forge_first: bool,
    /// (authorization URL as tessera built it, redirect URI, callback URL delivered or pasted).
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    /// With `forge_first`: the receiver's answer to the forged callback (status, page).
    forged_answers: Arc<Mutex<Vec<(u16, String)>>>,
}

impl HttpBrowser {
    pub fn new(authorize: Tamper, callback: Tamper) -> Arc<Self> {
        Arc::new(HttpBrowser {
            authorize,
            callback,
            forge_first: false,
            seen: Arc::default(),
            forged_answers: Arc::default(),
        })
    }

    pub fn honest() -> Arc<Self> {
        Self::new(|url| url, |url| url)
    }

    /// Delivers `forge(callback)` to the loopback receiver first, then the real callback.
    pub fn forging_first(forge: Tamper) -> Arc<Self> {
        Arc::new(HttpBrowser {
            authorize: |url| url,
            callback: forge,
            forge_first: true,
            seen: Arc::default(),
            forged_answers: Arc::default(),
        })
    }

    pub fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn forged_answers(&self) -> Vec<(u16, String)> {
        self.forged_answers.lock().unwrap().clone()
    }
}

/// Signs in as alice at the IdP's login page; the redirect's `Location`.
async fn sign_in(http: &reqwest::Client, authorization_url: &str) -> String {
    let page = http.get(authorization_url).send().await.expect("login page");
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
    answer.headers()["location"].to_str().unwrap().to_owned()
}

#[async_trait::async_trait]
impl Prompter for HttpBrowser {
    async fn show(&self, _key: &str, prompt: &Prompt) -> Result<(), Error> {
        let Prompt::Browser { authorization_url, redirect_uri } = prompt else {
            panic!("only browser prompts here: {prompt:?}");
        };
        let (authorization_url, redirect_uri) = (authorization_url.clone(), redirect_uri.clone());
        let (authorize, callback, seen) = (self.authorize, self.callback, self.seen.clone());
        let (forge_first, forged_answers) = (self.forge_first, self.forged_answers.clone());
        // `show` must return quickly: the person "uses the browser" while the receiver waits.
        tokio::spawn(async move {
            let http = no_redirects();
            let location = sign_in(&http, &authorize(authorization_url.clone())).await;
            if forge_first {
                let forged = http.get(callback(location.clone())).send().await.expect("the receiver answers");
                let status = forged.status().as_u16();
                let page = forged.text().await.unwrap_or_default();
                forged_answers.lock().unwrap().push((status, page));
                seen.lock().unwrap().push((authorization_url, redirect_uri, location.clone()));
                let _ = http.get(&location).send().await;
                return;
            }
            let delivered = callback(location);
            seen.lock().unwrap().push((authorization_url, redirect_uri, delivered.clone()));
            let _ = http.get(&delivered).send().await;
        });
        Ok(())
    }

    /// Paste mode (a fixed redirect URI, no receiver): sign in and answer with the (rewritten)
    /// URL the browser was sent to.
    async fn ask(&self, _key: &str, prompt: &Prompt) -> Result<tessera::Secret, Error> {
        let Prompt::Browser { authorization_url, redirect_uri } = prompt else {
            panic!("only browser prompts here: {prompt:?}");
        };
        let location = sign_in(&no_redirects(), &(self.authorize)(authorization_url.clone())).await;
        let pasted = (self.callback)(location);
        self.seen.lock().unwrap().push((authorization_url.clone(), redirect_uri.clone(), pasted.clone()));
        Ok(tessera::Secret::new(pasted))
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
