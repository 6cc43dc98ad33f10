"""A person approving a device code at panva's oidc-provider, the way a browser does: open the
verification page, submit the user code (with the page's xsrf field), confirm, sign in on the
dev-interactions login form, consent. Cookies are kept and redirects followed by httpx.

Mirrors crates/tessera/tests/support/oidc_provider.rs (`approve_device`)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Dict, List, Optional, Tuple
from urllib.parse import urljoin

import httpx

DEVICE_CLIENT_ID = "device-client"
STEP_TIMEOUT_S = 10


class _Form:
    def __init__(self, form_id: Optional[str], action: Optional[str]) -> None:
        self.id = form_id
        self.action = action
        self.fields: List[Tuple[str, str]] = []

    def field(self, name: str) -> Optional[str]:
        return next((value for key, value in self.fields if key == name), None)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: List[_Form] = []
        self._open: Optional[_Form] = None

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._open = _Form(attributes.get("id"), attributes.get("action"))
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attributes.get("name"):
            self._open.fields.append((str(attributes["name"]), attributes.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _forms(page: httpx.Response) -> List[_Form]:
    parser = _Forms()
    parser.feed(page.text)
    return parser.forms


def _form(page: httpx.Response, form_id: str) -> _Form:
    for form in _forms(page):
        if form.id == form_id:
            return form
    raise AssertionError(f"no form {form_id} on {page.url}:\n{page.text}")


def _submit(browser: httpx.Client, page: httpx.Response, form: _Form, extra: Dict[str, str]) -> httpx.Response:
    fields = dict(form.fields)
    fields.update(extra)
    return browser.post(urljoin(str(page.url), form.action or str(page.url)), data=fields)


def approve_device(verification_uri: str, user_code: str, username: str = "alice") -> None:
    """Approves `user_code` as `username`; the polling client gets tokens on its next poll."""
    with httpx.Client(follow_redirects=True, timeout=STEP_TIMEOUT_S, trust_env=False) as browser:
        page = browser.get(verification_uri)
        entry = _form(page, "op.deviceInputForm")
        assert entry.field("xsrf"), f"no xsrf field on the verification page:\n{page.text}"
        page = _submit(browser, page, entry, {"user_code": user_code})
        page = _submit(browser, page, _form(page, "op.deviceConfirmForm"), {})
        for _ in range(4):
            if "Sign-in Success" in page.text:
                return
            form = next((form for form in _forms(page) if form.field("prompt")), None)
            if form is None:
                break
            if form.field("prompt") == "login":
                page = _submit(browser, page, form, {"login": username, "password": "any-password"})
            elif form.field("prompt") == "consent":
                page = _submit(browser, page, form, {})
            else:
                break
        raise AssertionError(f"approving {user_code} did not end on the success page:\n{page.text}")


def deny_device(verification_uri: str, user_code: str) -> None:
    """A person enters `user_code`, then presses "Abort" on the confirmation page."""
    with httpx.Client(follow_redirects=True, timeout=STEP_TIMEOUT_S, trust_env=False) as browser:
        page = browser.get(verification_uri)
        page = _submit(browser, page, _form(page, "op.deviceInputForm"), {"user_code": user_code})
        confirm = _form(page, "op.deviceConfirmForm")
        # The "[ Abort ]" button submits the confirmation form plus its own name and value.
        abort = _Buttons("op.deviceConfirmForm")
        abort.feed(page.text)
        assert abort.found, f"no abort button on the confirmation page:\n{page.text}"
        page = _submit(browser, page, confirm, dict([abort.found]))
        assert "The Sign-in request was interrupted" in page.text, page.text


class _Buttons(HTMLParser):
    """Finds the (name, value) of the abort button that submits form `form_id`."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.found: Optional[Tuple[str, str]] = None

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        attributes = dict(attrs)
        if tag == "button" and attributes.get("form") == self.form_id and attributes.get("name") == "abort":
            self.found = ("abort", attributes.get("value") or "")


def revoke_grant(issuer: str, refresh_token: str) -> None:
    """Revokes the grant at the server (an administrator, a password change): oidc-provider
    revokes the whole grant with its refresh token."""
    response = httpx.post(
        issuer + "/token/revocation",
        data={"token": refresh_token, "client_id": DEVICE_CLIENT_ID},
        timeout=STEP_TIMEOUT_S,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
