//! The Cognito-compatible subset at `/cognito`: every operation, SECRET_HASH right / wrong /
//! missing, CodeMismatch then success on the same Session, session exhaustion and expiry,
//! refresh without rotation, and RevokeToken reaching the access tokens.

mod common;

use base64::Engine as _;
use common::{Harness, json, start, str_field};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use sha2::Sha256;
use tessera_idp::{Fault, FaultEndpoint, demo};

/// Sends `operation` with `body` the way the AWS SDKs do.
async fn call(h: &Harness, operation: &str, body: Value) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.url("/cognito"))
        .header(CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("X-Amz-Target", format!("AWSCognitoIdentityProviderService.{operation}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-amz-json-1.1");
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).expect("JSON body");
    (status, body)
}

/// Base64(HMAC-SHA256(client secret, username + client id)), as a Cognito client computes it.
fn secret_hash(username: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(demo::COGNITO_CLIENT_SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    mac.update(demo::COGNITO_SECRET_CLIENT_ID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn assert_aws_error(status: StatusCode, body: &Value, kind: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["__type"], kind, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

async fn password_auth(
    h: &Harness,
    client_id: &str,
    username: &str,
    password: &str,
    hash: Option<String>,
) -> (StatusCode, Value) {
    let mut params = json!({"USERNAME": username, "PASSWORD": password});
    if let Some(hash) = hash {
        params["SECRET_HASH"] = hash.into();
    }
    call(h, "InitiateAuth", json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id, "AuthParameters": params}))
        .await
}

/// Starts carol's EMAIL_OTP challenge on the public client; returns `(session, code)`.
async fn carol_challenge(h: &Harness) -> (String, String) {
    let (status, body) =
        password_auth(h, demo::COGNITO_CLIENT_ID, demo::CAROL_USERNAME, demo::CAROL_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ChallengeName"], "EMAIL_OTP");
    let code = h.server.outbox().last().expect("code emailed").code.clone();
    (str_field(&body, "Session").to_owned(), code)
}

async fn respond(h: &Harness, client_id: &str, name: &str, session: &str, responses: Value) -> (StatusCode, Value) {
    let body =
        json!({"ChallengeName": name, "ClientId": client_id, "Session": session, "ChallengeResponses": responses});
    call(h, "RespondToAuthChallenge", body).await
}

fn other_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

#[tokio::test]
async fn user_password_auth_returns_tokens_that_work_at_whoami() {
    let h = start().await;
    let (status, body) =
        password_auth(&h, demo::COGNITO_CLIENT_ID, demo::ALICE_USERNAME, demo::ALICE_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["AuthenticationResult"];
    assert_eq!(result["TokenType"], "Bearer");
    assert_eq!(result["ExpiresIn"], 300);
    assert!(result["RefreshToken"].is_string());
    let claims = common::verified_claims(&h, str_field(result, "IdToken"), demo::COGNITO_CLIENT_ID).await;
    assert_eq!(claims["email"], demo::ALICE_EMAIL);
    let (status, who) = json(h.whoami(str_field(result, "AccessToken")).await).await;
    assert_eq!((status, &who["sub"]), (StatusCode::OK, &demo::ALICE_USERNAME.into()));
    assert_eq!(h.server.stats().cognito_requests, 1);

    let (status, body) = password_auth(&h, demo::COGNITO_CLIENT_ID, demo::ALICE_USERNAME, "wrong", None).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    let (status, body) = password_auth(&h, demo::COGNITO_CLIENT_ID, "nobody", "x", None).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
}

#[tokio::test]
async fn secret_hash_right_wrong_and_missing() {
    let h = start().await;
    let client = demo::COGNITO_SECRET_CLIENT_ID;
    let (status, body) =
        password_auth(&h, client, demo::ALICE_USERNAME, demo::ALICE_PASSWORD, Some(secret_hash(demo::ALICE_USERNAME)))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["AuthenticationResult"]["AccessToken"].is_string());

    for hash in
        [None, Some(secret_hash(demo::BOB_USERNAME)), Some("bm90IGEgaGFzaA==".to_owned()), Some("%%%".to_owned())]
    {
        let (status, body) = password_auth(&h, client, demo::ALICE_USERNAME, demo::ALICE_PASSWORD, hash.clone()).await;
        assert_aws_error(status, &body, "NotAuthorizedException");
        assert!(str_field(&body, "message").starts_with("Unable to verify secret hash for client"), "{hash:?}: {body}");
    }
}

#[tokio::test]
async fn email_otp_code_mismatch_then_success_on_the_same_session() {
    let h = start().await;
    let (status, body) =
        password_auth(&h, demo::COGNITO_CLIENT_ID, demo::CAROL_USERNAME, demo::CAROL_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ChallengeName"], "EMAIL_OTP");
    assert_eq!(
        body["ChallengeParameters"],
        json!({"CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL", "CODE_DELIVERY_DESTINATION": "c***@e***", "USER_ID_FOR_SRP": "carol"})
    );
    assert!(body.get("AuthenticationResult").is_none());
    let session = str_field(&body, "Session");
    let message = h.server.outbox().last().unwrap().clone();
    assert_eq!(message.to, demo::CAROL_EMAIL);

    let wrong = json!({"USERNAME": "carol", "EMAIL_OTP_CODE": other_code(&message.code)});
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", session, wrong).await;
    assert_aws_error(status, &body, "CodeMismatchException");
    let right = json!({"USERNAME": "carol", "EMAIL_OTP_CODE": message.code});
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", session, right.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["AuthenticationResult"]["RefreshToken"].is_string());
    assert_eq!(h.whoami(str_field(&body["AuthenticationResult"], "AccessToken")).await.status(), StatusCode::OK);
    // The session is spent.
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", session, right).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
}

#[tokio::test]
async fn three_wrong_answers_end_the_session() {
    let h = start().await;
    let (session, code) = carol_challenge(&h).await;
    let wrong = json!({"USERNAME": "carol", "EMAIL_OTP_CODE": other_code(&code)});
    for _ in 0..2 {
        let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", &session, wrong.clone()).await;
        assert_aws_error(status, &body, "CodeMismatchException");
    }
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", &session, wrong).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    assert_eq!(body["message"], "Invalid session for the user.");
    let right = json!({"USERNAME": "carol", "EMAIL_OTP_CODE": code});
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", &session, right).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
}

#[tokio::test]
async fn sessions_expire_after_three_minutes() {
    let h = start().await;
    let (session, code) = carol_challenge(&h).await;
    h.server.set_clock_offset(180);
    let right = json!({"USERNAME": "carol", "EMAIL_OTP_CODE": code});
    let (status, body) = respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", &session, right).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
}

#[tokio::test]
async fn challenge_responses_are_checked() {
    let h = start().await;
    let (session, code) = carol_challenge(&h).await;
    // Another user's name, another challenge name, a missing answer, an unknown session.
    let (status, body) = respond(
        &h,
        demo::COGNITO_CLIENT_ID,
        "EMAIL_OTP",
        &session,
        json!({"USERNAME": "alice", "EMAIL_OTP_CODE": code}),
    )
    .await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    let (status, body) =
        respond(&h, demo::COGNITO_CLIENT_ID, "SMS_MFA", &session, json!({"USERNAME": "carol", "SMS_MFA_CODE": code}))
            .await;
    assert_aws_error(status, &body, "InvalidParameterException");
    let (status, body) =
        respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", &session, json!({"USERNAME": "carol"})).await;
    assert_aws_error(status, &body, "InvalidParameterException");
    let (status, body) =
        respond(&h, demo::COGNITO_CLIENT_ID, "EMAIL_OTP", "nope", json!({"USERNAME": "carol", "EMAIL_OTP_CODE": code}))
            .await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    // None of that used up an attempt: the right code still works.
    let (status, body) = respond(
        &h,
        demo::COGNITO_CLIENT_ID,
        "EMAIL_OTP",
        &session,
        json!({"USERNAME": "carol", "EMAIL_OTP_CODE": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn software_token_mfa_for_a_totp_user() {
    let h = start().await;
    let (status, body) = password_auth(&h, demo::COGNITO_CLIENT_ID, demo::BOB_USERNAME, demo::BOB_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ChallengeName"], "SOFTWARE_TOKEN_MFA");
    assert_eq!(body["ChallengeParameters"]["USER_ID_FOR_SRP"], "bob");
    assert!(h.server.outbox().is_empty());
    let session = str_field(&body, "Session");
    let code = common::bob_totp().generate_current().to_string();
    let (status, body) = respond(
        &h,
        demo::COGNITO_CLIENT_ID,
        "SOFTWARE_TOKEN_MFA",
        session,
        json!({"USERNAME": "bob", "SOFTWARE_TOKEN_MFA_CODE": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, who) = json(h.whoami(str_field(&body["AuthenticationResult"], "AccessToken")).await).await;
    assert_eq!(who["sub"], "bob");
}

#[tokio::test]
async fn custom_auth_emails_a_code_answered_with_answer() {
    let h = start().await;
    let client = demo::COGNITO_SECRET_CLIENT_ID;
    let params = json!({"USERNAME": "alice", "SECRET_HASH": secret_hash("alice")});
    let (status, body) =
        call(&h, "InitiateAuth", json!({"AuthFlow": "CUSTOM_AUTH", "ClientId": client, "AuthParameters": params}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ChallengeName"], "CUSTOM_CHALLENGE");
    assert_eq!(body["ChallengeParameters"]["email"], "a***@e***");
    let session = str_field(&body, "Session");
    let message = h.server.outbox().last().unwrap().clone();
    assert_eq!(message.to, demo::ALICE_EMAIL);

    // SECRET_HASH is required on the answer too.
    let (status, body) =
        respond(&h, client, "CUSTOM_CHALLENGE", session, json!({"USERNAME": "alice", "ANSWER": message.code})).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    let answer = json!({"USERNAME": "alice", "ANSWER": message.code, "SECRET_HASH": secret_hash("alice")});
    let (status, body) = respond(&h, client, "CUSTOM_CHALLENGE", session, answer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["AuthenticationResult"]["IdToken"].is_string());

    let params = json!({"USERNAME": "nobody"});
    let (status, body) = call(
        &h,
        "InitiateAuth",
        json!({"AuthFlow": "CUSTOM_AUTH", "ClientId": demo::COGNITO_CLIENT_ID, "AuthParameters": params}),
    )
    .await;
    assert_aws_error(status, &body, "UserNotFoundException");
}

#[tokio::test]
async fn refresh_does_not_rotate_and_revoke_token_ends_the_session() {
    let h = start().await;
    let client = demo::COGNITO_SECRET_CLIENT_ID;
    let (_, body) =
        password_auth(&h, client, demo::ALICE_USERNAME, demo::ALICE_PASSWORD, Some(secret_hash(demo::ALICE_USERNAME)))
            .await;
    let first = body["AuthenticationResult"].clone();
    let refresh_token = str_field(&first, "RefreshToken");

    let refresh = |flow: &'static str, hash: Option<String>| {
        let mut params = json!({"REFRESH_TOKEN": refresh_token});
        if let Some(hash) = hash {
            params["SECRET_HASH"] = hash.into();
        }
        call(&h, "InitiateAuth", json!({"AuthFlow": flow, "ClientId": client, "AuthParameters": params}))
    };
    let (status, body) = refresh("REFRESH_TOKEN_AUTH", None).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    let (status, body) = refresh("REFRESH_TOKEN_AUTH", Some(secret_hash(demo::ALICE_USERNAME))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["AuthenticationResult"];
    assert!(result.get("RefreshToken").is_none(), "{body}");
    assert!(result["IdToken"].is_string());
    let second_access = str_field(result, "AccessToken").to_owned();
    assert_ne!(second_access, str_field(&first, "AccessToken"));
    // Not rotated: the same refresh token keeps working (also under the short flow name).
    let (status, body) = refresh("REFRESH_TOKEN", Some(secret_hash(demo::ALICE_USERNAME))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // RevokeToken needs the client secret of a confidential client.
    let (status, body) = call(&h, "RevokeToken", json!({"Token": refresh_token, "ClientId": client})).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    let revoke = json!({"Token": refresh_token, "ClientId": client, "ClientSecret": demo::COGNITO_CLIENT_SECRET});
    let (status, body) = call(&h, "RevokeToken", revoke).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    let (status, body) = refresh("REFRESH_TOKEN_AUTH", Some(secret_hash(demo::ALICE_USERNAME))).await;
    assert_aws_error(status, &body, "NotAuthorizedException");
    assert_eq!(body["message"], "Refresh Token has been revoked");
    for access in [str_field(&first, "AccessToken"), second_access.as_str()] {
        assert_eq!(h.whoami(access).await.status(), StatusCode::UNAUTHORIZED);
    }
    // An unknown refresh token is refused the same way.
    let params = json!({"REFRESH_TOKEN": "unknown"});
    let (status, body) = call(
        &h,
        "InitiateAuth",
        json!({"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": demo::COGNITO_CLIENT_ID, "AuthParameters": params}),
    )
    .await;
    assert_aws_error(status, &body, "NotAuthorizedException");
}

#[tokio::test]
async fn protocol_errors_use_aws_exception_names() {
    let h = start().await;
    let (status, body) = call(&h, "SignUp", json!({})).await;
    assert_aws_error(status, &body, "UnknownOperationException");
    let (status, body) = call(&h, "InitiateAuth", json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "nope"})).await;
    assert_aws_error(status, &body, "ResourceNotFoundException");
    let (status, body) =
        call(&h, "InitiateAuth", json!({"AuthFlow": "USER_SRP_AUTH", "ClientId": demo::COGNITO_CLIENT_ID})).await;
    assert_aws_error(status, &body, "InvalidParameterException");
    let (status, body) = call(
        &h,
        "InitiateAuth",
        json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": demo::COGNITO_CLIENT_ID, "AuthParameters": {"USERNAME": "alice"}}),
    )
    .await;
    assert_aws_error(status, &body, "InvalidParameterException");
    // A client without the password grant has the flow disabled.
    let (status, body) = password_auth(&h, demo::BROWSER_CLIENT_ID, "alice", demo::ALICE_PASSWORD, None).await;
    assert_aws_error(status, &body, "InvalidParameterException");

    let response = h
        .http
        .post(h.url("/cognito/"))
        .header("X-Amz-Target", "AWSCognitoIdentityProviderService.InitiateAuth")
        .header(CONTENT_TYPE, "application/x-amz-json-1.1")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-amzn-errortype"], "SerializationException:");
    let (status, body) = json(response).await;
    assert_aws_error(status, &body, "SerializationException");

    h.server.faults().push(FaultEndpoint::Cognito, Fault::status(500, "boom"), 1);
    let response = h.http.post(h.url("/cognito")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
