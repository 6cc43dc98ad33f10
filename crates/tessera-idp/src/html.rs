//! The few HTML pages a person (or a headless browser in a test) sees: the login page of
//! `/authorize`, the device verification page of `/device`, and error pages. Plain strings,
//! no template engine: every value that comes from a request goes through [`escape`].
//!
//! Element ids (`username`, `password`, `totp`, `user_code`, `sign-in`, `approve`, `deny`) are
//! part of the contract browser tests rely on; see docs/reference-idp.md.

use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Escapes text for an HTML element body or a double-quoted attribute value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page with `status`. Pages are never cached and never framed (clickjacking).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let document = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}\
         label{{display:block;margin-top:1em}}input{{width:100%}}.error{{color:#b00020}}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n",
        title = escape(title)
    );
    let mut response = (status, Html(document)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An error page: no redirect, the person reads `message`.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!("<p class=\"error\" id=\"error\">{}</p>", escape(message));
    page(status, "Sign-in error", &body)
}

/// The `<p id="error">` of a page shown again after a failed attempt, or nothing.
fn error_paragraph(error: Option<&str>) -> String {
    error.map(|e| format!("<p class=\"error\" id=\"error\" role=\"alert\">{}</p>\n", escape(e))).unwrap_or_default()
}

/// What the login page of `/authorize` shows.
pub(crate) struct LoginPage<'a> {
    /// Server-side id of the pending authorization request (hidden field `request_id`).
    pub(crate) request_id: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) scope: &'a str,
    /// Pre-filled username (`login_hint`, or the one just tried).
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// The login page: username, password, optional TOTP, sign in or deny.
pub(crate) fn login_page(status: StatusCode, p: &LoginPage<'_>) -> Response {
    let body = format!(
        "{error}<p><strong>{client}</strong> asks for access: <code id=\"scope\">{scope}</code></p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\n\
         <label for=\"username\">Username</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" value=\"{username}\" required>\n\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\n\
         <label for=\"totp\">One-time code (only if your account has one)</label>\
         <input id=\"totp\" name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\n\
         <p><button id=\"sign-in\" type=\"submit\" name=\"action\" value=\"sign-in\">Sign in</button>\n\
         <button id=\"deny\" type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button></p>\n\
         </form>",
        error = error_paragraph(p.error),
        client = escape(p.client_id),
        scope = escape(p.scope),
        request_id = escape(p.request_id),
        username = escape(p.username),
    );
    page(status, "Sign in", &body)
}

/// The device verification page: user code, credentials, approve or deny.
pub(crate) fn device_page(status: StatusCode, user_code: &str, username: &str, error: Option<&str>) -> Response {
    let body = format!(
        "{error}<p>Enter the code shown on your device, then sign in to approve it.</p>\n\
         <form method=\"post\" action=\"/device\">\n\
         <label for=\"user_code\">Code</label>\
         <input id=\"user_code\" name=\"user_code\" value=\"{user_code}\" autocomplete=\"off\" required>\n\
         <label for=\"username\">Username</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" value=\"{username}\">\n\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\n\
         <label for=\"totp\">One-time code (only if your account has one)</label>\
         <input id=\"totp\" name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\n\
         <p><button id=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n\
         <button id=\"deny\" type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button></p>\n\
         </form>",
        error = error_paragraph(error),
        user_code = escape(user_code),
        username = escape(username),
    );
    page(status, "Connect a device", &body)
}

/// The page after the device form: the person may close the tab.
pub(crate) fn device_done(approved: bool) -> Response {
    let (id, text) = if approved {
        ("approved", "Device approved. You can close this window and return to your device.")
    } else {
        ("denied", "Access denied. The device will not be signed in.")
    };
    page(StatusCode::OK, "Device", &format!("<p id=\"{id}\">{text}</p>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("plain"), "plain");
    }
}
