//! The exchange identity API of `specs/nebulaecn-auth-api.txt` at `/api/v2/auth`:
//! the public `identity/...` routes (sign up by e-mail, sign in with a password
//! and two-factor code, sign out, the server's time, version and settings,
//! password strength) and the signed-in `resource/...` routes (the user, the
//! password, two-factor codes, signed API keys, the activity log). Parameters come as a form or
//! as JSON; errors answer in that API's format, `{"errors": ["<code>"]}`, with
//! a `message` in words beside it.

use axum::extract::{FromRequest, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::gate::SignedIn;
use crate::AppState;
use app::api::auth::SeenFrom;
use app::api::http_status;
use engine::accounts::activity::{Activity, ActivityFilter, Outcome, Topic};
use engine::{Access, Caller, Engine, User};

mod verification;

pub fn router() -> Router<AppState> {
    let mut router = Router::new().merge(verification::router());
    // The spec serves these under both names.
    for area in ["identity", "public"] {
        router = router
            .route(&format!("/api/v2/auth/{area}/ping"), get(ping))
            .route(&format!("/api/v2/auth/{area}/time"), get(time))
            .route(&format!("/api/v2/auth/{area}/version"), get(version))
            .route(&format!("/api/v2/auth/{area}/configs"), get(configs))
            .route(
                &format!("/api/v2/auth/{area}/password/validate"),
                post(validate_password),
            );
    }
    router
        .route("/api/v2/auth/identity/users", post(sign_up))
        .route(
            "/api/v2/auth/identity/users/register_geetest",
            get(register_geetest),
        )
        .route(
            "/api/v2/auth/identity/sessions",
            post(sign_in).delete(sign_out),
        )
        .route(
            "/api/v2/auth/identity/users/email/generate_code",
            post(email_generate_code),
        )
        .route(
            "/api/v2/auth/identity/users/email/confirm_code",
            post(email_confirm_code),
        )
        .route(
            "/api/v2/auth/identity/users/password/generate_code",
            post(password_generate_code),
        )
        .route(
            "/api/v2/auth/identity/users/password/confirm_code",
            post(password_confirm_code),
        )
        .route(
            "/api/v2/auth/resource/profiles",
            post(create_profile).put(update_profile),
        )
        .route("/api/v2/auth/resource/profiles/me", get(my_profile))
        .route(
            "/api/v2/auth/resource/labels",
            get(list_labels).post(add_label),
        )
        .route(
            "/api/v2/auth/resource/labels/{key}",
            get(get_label).patch(update_label).delete(delete_label),
        )
        .route(
            "/api/v2/auth/resource/users/me",
            get(me).put(update_data).delete(close),
        )
        .route("/api/v2/auth/resource/users/password", put(change_password))
        .route(
            "/api/v2/auth/resource/users/activity/{topic}",
            get(activity),
        )
        .route(
            "/api/v2/auth/resource/otp/generate_qrcode",
            post(generate_qrcode),
        )
        .route("/api/v2/auth/resource/otp/enable", post(enable_otp))
        .route("/api/v2/auth/resource/otp/verify", post(verify_otp))
        .route("/api/v2/auth/resource/otp/disable", post(disable_otp))
        .route(
            "/api/v2/auth/resource/api_keys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/api/v2/auth/resource/api_keys/{kid}",
            axum::routing::patch(update_api_key).delete(delete_api_key),
        )
        // A service account's keys: the same, naming `service_account_uid`
        // (the spec changes them with PUT).
        .route(
            "/api/v2/auth/resource/service_accounts/api_keys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/api/v2/auth/resource/service_accounts/api_keys/{kid}",
            put(update_api_key).delete(delete_api_key),
        )
        .route(
            "/api/v2/auth/resource/service_accounts",
            get(list_service_accounts).post(create_service_account),
        )
        .route(
            "/api/v2/auth/resource/service_accounts/{uid}",
            axum::routing::delete(delete_service_account),
        )
}

// ---- The user as the spec shows it ----

/// `API_V2_Entities_UserWithFullInfo`.
#[derive(Debug, Serialize)]
struct UserWithFullInfo {
    email: Option<String>,
    uid: String,
    role: &'static str,
    level: u8,
    otp: bool,
    state: &'static str,
    referral_uid: Option<String>,
    data: String,
    /// The session's anti-forgery token (empty for a token's caller): cookie
    /// writes send it back as `X-CSRF-Token`.
    csrf_token: String,
    username: String,
    labels: Vec<LabelView>,
    phones: Vec<verification::PhoneView>,
    profiles: Vec<ProfileView>,
    data_storages: Vec<verification::DataStorageView>,
    created_at: String,
    updated_at: String,
}

async fn full_info(engine: &Engine, user: &User, csrf: &str) -> Result<UserWithFullInfo, Refusal> {
    let area = "resource.user";
    let accounts = &engine.accounts;
    let (standing, extra, profile, phones, storages) = tokio::try_join!(
        accounts.standing(user),
        accounts.user_data(&user.id.0),
        accounts.profile(&user.id.0),
        accounts.phones(user),
        accounts.data_storages(user),
    )
    .map_err(at(area))?;
    let labels = accounts
        .labels_of(user, &standing)
        .await
        .map_err(at(area))?;
    Ok(UserWithFullInfo {
        email: user.email.clone(),
        uid: user.id.0.clone(),
        role: if user.is_admin { "admin" } else { "member" },
        level: standing.level(),
        otp: standing.two_factor,
        state: "active",
        referral_uid: extra.referral_uid,
        data: extra.data,
        csrf_token: csrf.to_string(),
        username: user.username.clone(),
        labels: labels.into_iter().map(LabelView::from).collect(),
        phones: phones
            .into_iter()
            .map(verification::PhoneView::from)
            .collect(),
        profiles: profile.into_iter().map(ProfileView::from).collect(),
        data_storages: storages
            .into_iter()
            .map(verification::DataStorageView::from)
            .collect(),
        created_at: engine::rfc3339(user.created_at_ms),
        updated_at: engine::rfc3339(extra.updated_at_ms.unwrap_or(user.created_at_ms)),
    })
}

/// `API_V2_Entities_Label`.
#[derive(Debug, Serialize)]
struct LabelView {
    key: String,
    value: String,
    scope: &'static str,
    created_at: String,
    updated_at: String,
}

impl From<engine::accounts::labels::Label> for LabelView {
    fn from(l: engine::accounts::labels::Label) -> Self {
        LabelView {
            key: l.key,
            value: l.value,
            scope: l.scope,
            created_at: engine::rfc3339(l.created_at_ms),
            updated_at: engine::rfc3339(l.updated_at_ms),
        }
    }
}

/// `text` "submasked", as the spec shows personal data: its first
/// `keep_first` and last `keep_last` characters, `*` between.
fn submask(text: &str, keep_first: usize, keep_last: usize) -> String {
    let count = text.chars().count();
    text.chars()
        .enumerate()
        .map(|(i, c)| match i < keep_first || i + keep_last >= count {
            true => c,
            false => '*',
        })
        .collect()
}

/// `API_V2_Entities_Profile`: the last name and birth date "submasked", as
/// the spec says (the initial; the year).
#[derive(Debug, Serialize)]
struct ProfileView {
    first_name: String,
    last_name: String,
    dob: Option<String>,
    address: String,
    postcode: String,
    city: String,
    country: String,
    state: String,
    metadata: serde_json::Value,
    created_at: String,
    updated_at: String,
}

impl From<engine::accounts::profiles::Profile> for ProfileView {
    fn from(p: engine::accounts::profiles::Profile) -> Self {
        let last_name = submask(&p.last_name, 1, 0);
        ProfileView {
            first_name: p.first_name,
            last_name,
            dob: p
                .dob
                .map(|d| format!("{}-**-**", d.get(..4).unwrap_or_default())),
            address: p.address,
            postcode: p.postcode,
            city: p.city,
            country: p.country,
            state: p.state,
            metadata: serde_json::from_str(&p.metadata).unwrap_or_default(),
            created_at: engine::rfc3339(p.created_at_ms),
            updated_at: engine::rfc3339(p.updated_at_ms),
        }
    }
}

// ---- Public routes ----

async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ping": "pong" }))
}

async fn time() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "time": engine::now_ms() / 1000 }))
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_tag": format!("v{}", env!("CARGO_PKG_VERSION")),
    }))
}

async fn configs() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "session_expire_time": engine::accounts::sessions::SESSION_IDLE_MS / 1000,
        "captcha_type": "none",
        "captcha_id": null,
        "password_min_score": engine::accounts::MIN_PASSWORD_SCORE,
        "password_regexp": "^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9]).{8,64}$",
        "otp_issuer": engine::accounts::two_factor::ISSUER,
    }))
}

/// No captcha runs here: the answer says so, and no route asks for one.
async fn register_geetest() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "captcha_type": "none", "message": "captcha is off on this server" }))
}

#[derive(Debug, Deserialize)]
struct PasswordParams {
    password: String,
}

/// `POST identity/password/validate`: 201 with how strong the password is
/// (`entropy` in bits, the `zxcvbn` score and whether sign-up takes it).
/// Throttled per client address: judging costs real work.
async fn validate_password(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<PasswordParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    let area = "identity.password";
    engine
        .throttle
        .begin(&[(engine::throttle::Scope::StrengthClient, &seen.address)])
        .await
        .map_err(at(area))?;
    let (strength, accepted) = engine
        .accounts
        .judge_password(&p.password, &[])
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "entropy": strength.entropy,
            "score": strength.score,
            "strong": accepted.is_ok(),
            "warning": strength.warning,
            "suggestions": strength.suggestions,
        })),
    ))
}

#[derive(Debug, Deserialize)]
struct SignUpParams {
    email: String,
    password: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    refid: Option<String>,
    #[serde(default)]
    data: Option<String>,
    /// No captcha runs here; a client that sends one is not refused.
    #[serde(default)]
    #[allow(dead_code)]
    captcha_response: Option<String>,
}

/// `POST identity/users`: 201 with the new user, signed in on this browser.
async fn sign_up(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    session: Session,
    Params(p): Params<SignUpParams>,
) -> Result<(StatusCode, Json<UserWithFullInfo>), Refusal> {
    let area = "identity.user";
    let user = engine
        .sign_up_by_email(
            &p.email,
            &p.password,
            p.username.as_deref(),
            p.refid.as_deref(),
            p.data.as_deref().unwrap_or_default(),
            &seen.address,
        )
        .await
        .map_err(at(area))?;
    engine.accounts.confirm_after_sign_up(&user, &engine.mail);
    let csrf = engine::random_hex(16);
    app::api::auth::switch_session(&engine, &session, &user, csrf.clone(), &seen)
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(full_info(&engine, &user, &csrf).await?),
    ))
}

#[derive(Debug, Deserialize)]
struct SignInParams {
    email: String,
    password: String,
    #[serde(default)]
    otp_code: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    captcha_response: Option<String>,
}

/// `POST identity/sessions`: 201 with the user, this browser signed in (a
/// fresh session). An account with two-factor codes on needs `otp_code`: 401
/// `identity.session.missing_otp` without one.
async fn sign_in(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    session: Session,
    Params(p): Params<SignInParams>,
) -> Result<(StatusCode, Json<UserWithFullInfo>), Refusal> {
    let area = "identity.session";
    // An address no account has still costs a password check (of a name no
    // account can have: it holds `@`), so timing does not tell who exists.
    let username = engine
        .accounts
        .username_for_email(&p.email)
        .await
        .map_err(at(area))?
        .unwrap_or_else(|| p.email.clone());
    let user = engine
        .accounts
        .login(&username, &p.password, p.otp_code.as_deref(), &seen)
        .await
        .map_err(at(area))?;
    let csrf = engine::random_hex(16);
    app::api::auth::switch_session(&engine, &session, &user, csrf.clone(), &seen)
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(full_info(&engine, &user, &csrf).await?),
    ))
}

/// `DELETE identity/sessions`: 204, this browser signed out (404 when it was
/// not signed in).
async fn sign_out(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    session: Session,
) -> Result<StatusCode, Refusal> {
    let ended = app::api::auth::sign_out(&engine, &session, &seen)
        .await
        .map_err(at("identity.session"))?;
    if ended {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "identity.session.not_found",
            "this browser is not signed in",
        ))
    }
}

// ---- The signed-in user ----

/// `GET resource/users/me`.
async fn me(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<UserWithFullInfo>, Refusal> {
    Ok(Json(full_info(&engine, &caller.user, caller.csrf()).await?))
}

#[derive(Debug, Deserialize)]
struct DataParams {
    data: String,
}

/// `PUT resource/users/me {data}`: replaces the user's `data` (a JSON object).
async fn update_data(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<DataParams>,
) -> Result<Json<UserWithFullInfo>, Refusal> {
    let area = "resource.user";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    engine
        .accounts
        .set_user_data(&caller.user, &p.data)
        .await
        .map_err(at(area))?;
    Ok(Json(full_info(&engine, &caller.user, caller.csrf()).await?))
}

#[derive(Debug, Deserialize)]
struct CloseParams {
    password: String,
    #[serde(default)]
    otp_code: Option<String>,
}

/// `DELETE resource/users/me?password&otp_code`: 204, the account gone with
/// everything of it, unless it still holds funds (422 saying what to move
/// first: deleting never destroys money). The password is asked of every
/// credential here, and the code of an account that has two-factor on.
async fn close(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    SeenFrom(seen): SeenFrom,
    session: Session,
    Query(p): Query<CloseParams>,
) -> Result<StatusCode, Refusal> {
    let area = "resource.user";
    caller
        .permits(Access::CloseAccount)
        .map_err(|d| at(area)(d.into()))?;
    // The spec asks every credential for the password (the engine asks a
    // browser's session only).
    if !matches!(caller.credential, engine::Credential::Session { .. }) {
        engine
            .accounts
            .recheck(&caller.user, &p.password, &seen)
            .await
            .map_err(at(area))?;
    }
    engine
        .close_account(&caller, Some(&p.password), p.otp_code.as_deref(), &seen)
        .await
        .map_err(at(area))?;
    let _ = session.flush().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct PasswordChangeParams {
    old_password: String,
    new_password: String,
    confirm_password: String,
    #[serde(default)]
    otp_code: Option<String>,
}

/// `PUT resource/users/password`: 201; every session and token of the
/// account ends, this one included (sign in again with the new password).
async fn change_password(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    session: Session,
    Params(p): Params<PasswordChangeParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    let area = "resource.password";
    if p.new_password != p.confirm_password {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.password.doesnt_match",
            "the new password and its confirmation are not the same",
        ));
    }
    engine
        .accounts
        .change_password(
            &caller.user,
            &p.old_password,
            &p.new_password,
            p.otp_code.as_deref(),
            &seen,
        )
        .await
        .map_err(at(area))?;
    let _ = session.flush().await;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "message": "password changed" })),
    ))
}

// ---- Two-factor codes ----

/// `POST resource/otp/generate_qrcode`: a new secret, off until enabled with
/// a code of it: `{"data": {"url": "otpauth://...", "barcode": "<base64 PNG>"}}`
/// (the secret in base32 beside them). 400 while two-factor is on.
async fn generate_qrcode(
    State(engine): State<Engine>,
    Managing(caller): Managing,
) -> Result<Json<serde_json::Value>, Refusal> {
    let area = "resource.otp";
    let enrolment = engine
        .accounts
        .start_two_factor(&caller.user)
        .await
        .map_err(at(area))?;
    let png = crate::wallet_api::qr_png(&enrolment.url)
        .map_err(|e| at(area)(engine::Error::Internal(e)))?;
    let barcode = base64::engine::general_purpose::STANDARD.encode(png);
    Ok(Json(serde_json::json!({
        "data": {
            "url": enrolment.url,
            "barcode": barcode,
            "secret": enrolment.secret,
        }
    })))
}

#[derive(Debug, Deserialize)]
struct CodeParams {
    code: String,
}

/// `POST resource/otp/enable {code}`: 200, two-factor on.
async fn enable_otp(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<CodeParams>,
) -> Result<Json<serde_json::Value>, Refusal> {
    engine
        .accounts
        .enable_two_factor(&caller.user, &p.code, &seen)
        .await
        .map_err(at("resource.otp"))?;
    Ok(Json(serde_json::json!({ "message": "2FA was enabled" })))
}

/// `POST resource/otp/verify {code}`: 200 when the code is right.
async fn verify_otp(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<CodeParams>,
) -> Result<Json<serde_json::Value>, Refusal> {
    engine
        .accounts
        .verify_two_factor(&caller.user, &p.code, &seen)
        .await
        .map_err(at("resource.otp"))?;
    Ok(Json(serde_json::json!({ "message": "2FA was verified" })))
}

/// `POST resource/otp/disable {code}`: 200, two-factor off.
async fn disable_otp(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<CodeParams>,
) -> Result<Json<serde_json::Value>, Refusal> {
    engine
        .accounts
        .disable_two_factor(&caller.user, &p.code, &seen)
        .await
        .map_err(at("resource.otp"))?;
    Ok(Json(serde_json::json!({ "message": "2FA was disabled" })))
}

// ---- Signed API keys ----

/// `API_V2_Entities_APIKey`; `secret` only in the answer that makes the key.
#[derive(Debug, Serialize)]
struct ApiKeyView {
    kid: String,
    algorithm: String,
    scope: Vec<&'static str>,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: String,
    updated_at: String,
}

impl ApiKeyView {
    fn new(key: engine::api_keys::ApiKey, secret: Option<String>) -> Self {
        ApiKeyView {
            kid: key.kid,
            algorithm: key.algorithm,
            scope: key.scopes.iter().map(|s| s.as_str()).collect(),
            state: key.state,
            secret,
            created_at: engine::rfc3339(key.created_at_ms),
            updated_at: engine::rfc3339(key.updated_at_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
struct KeyListParams {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    service_account_uid: Option<String>,
}

/// Whose keys a request is about: on the service-account routes
/// (`resource/service_accounts/api_keys`), the owner's service account
/// `service_account_uid` names (404 for anyone else's); elsewhere the
/// caller's own.
async fn key_holder(
    engine: &Engine,
    owner: &User,
    route: &axum::extract::MatchedPath,
    uid: Option<&str>,
) -> Result<User, Refusal> {
    let area = "resource.api_key";
    if !route.as_str().contains("/service_accounts/") {
        return Ok(owner.clone());
    }
    let uid = uid.filter(|u| !u.is_empty()).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "missing_service_account_uid",
            "service_account_uid is required",
        )
    })?;
    engine
        .accounts
        .service_account(owner, uid)
        .await
        .map_err(at(area))
}

/// `GET resource/api_keys?page&limit`: the account's keys, oldest first,
/// with `Total`, `Page` and `Per-Page`.
async fn list_api_keys(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    route: axum::extract::MatchedPath,
    Query(p): Query<KeyListParams>,
) -> Result<(HeaderMap, Json<Vec<ApiKeyView>>), Refusal> {
    let area = "resource.api_key";
    let holder = key_holder(
        &engine,
        &caller.user,
        &route,
        p.service_account_uid.as_deref(),
    )
    .await?;
    let page = page_number(area, "page", p.page.as_deref(), 1..=1_000_000)?.unwrap_or(1);
    let per_page = page_number(area, "limit", p.limit.as_deref(), 1..=100)?.unwrap_or(100);
    let (keys, total) = engine
        .api_keys
        .list(&holder, page as u32, per_page as u32)
        .await
        .map_err(at(area))?;
    Ok((
        paged(total, page, per_page),
        Json(keys.into_iter().map(|k| ApiKeyView::new(k, None)).collect()),
    ))
}

#[derive(Debug, Deserialize)]
struct KeyCreateParams {
    algorithm: String,
    #[serde(default)]
    service_account_uid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    totp_code: Option<String>,
}

/// `POST resource/api_keys {algorithm: HS256, scope, totp_code}`: 201 with the
/// key and its secret, shown this once. The code is asked of an account that
/// has two-factor on.
async fn create_api_key(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    route: axum::extract::MatchedPath,
    Params(p): Params<KeyCreateParams>,
) -> Result<(StatusCode, Json<ApiKeyView>), Refusal> {
    let area = "resource.api_key";
    let holder = key_holder(
        &engine,
        &caller.user,
        &route,
        p.service_account_uid.as_deref(),
    )
    .await?;
    let scopes =
        engine::api_keys::parse_scopes(p.scope.as_deref().unwrap_or_default()).map_err(at(area))?;
    let (key, secret) = engine
        .create_api_key(
            engine::api_keys::KeyHolder {
                owner: &caller.user,
                holder: &holder,
            },
            &p.algorithm,
            scopes,
            p.totp_code.as_deref(),
            &seen,
        )
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyView::new(key, Some(secret))),
    ))
}

#[derive(Debug, Deserialize)]
struct KeyUpdateParams {
    #[serde(default)]
    service_account_uid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    totp_code: Option<String>,
}

/// `PATCH resource/api_keys/{kid} {scope?, state?, totp_code}`: a key
/// disabled (`state: disabled`) is refused at once.
async fn update_api_key(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    route: axum::extract::MatchedPath,
    Path(kid): Path<String>,
    Params(p): Params<KeyUpdateParams>,
) -> Result<Json<ApiKeyView>, Refusal> {
    let area = "resource.api_key";
    let holder = key_holder(
        &engine,
        &caller.user,
        &route,
        p.service_account_uid.as_deref(),
    )
    .await?;
    let scopes = p
        .scope
        .as_deref()
        .map(engine::api_keys::parse_scopes)
        .transpose()
        .map_err(at(area))?;
    let key = engine
        .update_api_key(
            engine::api_keys::KeyHolder {
                owner: &caller.user,
                holder: &holder,
            },
            &kid,
            scopes,
            p.state.as_deref(),
            p.totp_code.as_deref(),
            &seen,
        )
        .await
        .map_err(at(area))?;
    Ok(Json(ApiKeyView::new(key, None)))
}

#[derive(Debug, Deserialize)]
struct KeyDeleteParams {
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    service_account_uid: Option<String>,
}

/// `DELETE resource/api_keys/{kid}?totp_code`: 204, the key gone.
async fn delete_api_key(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    SeenFrom(seen): SeenFrom,
    route: axum::extract::MatchedPath,
    Path(kid): Path<String>,
    Query(p): Query<KeyDeleteParams>,
) -> Result<StatusCode, Refusal> {
    let area = "resource.api_key";
    let holder = key_holder(
        &engine,
        &caller.user,
        &route,
        p.service_account_uid.as_deref(),
    )
    .await?;
    engine
        .delete_api_key(
            engine::api_keys::KeyHolder {
                owner: &caller.user,
                holder: &holder,
            },
            &kid,
            p.totp_code.as_deref(),
            &seen,
        )
        .await
        .map_err(at(area))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Service accounts ----

/// `API_V2_Entities_ServiceAccounts`: `user` is the owner.
#[derive(Debug, Serialize)]
struct ServiceAccountView {
    email: Option<String>,
    uid: String,
    username: String,
    role: String,
    level: u8,
    state: &'static str,
    user: OwnerView,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Serialize)]
struct OwnerView {
    email: Option<String>,
    uid: String,
    username: String,
}

fn service_account_view(
    owner: &User,
    account: engine::accounts::service_accounts::ServiceAccount,
) -> ServiceAccountView {
    ServiceAccountView {
        email: None,
        uid: account.user.id.0,
        username: account.user.username,
        role: account.role,
        level: 0,
        state: "active",
        user: OwnerView {
            email: owner.email.clone(),
            uid: owner.id.0.clone(),
            username: owner.username.clone(),
        },
        created_at: engine::rfc3339(account.created_at_ms),
        updated_at: engine::rfc3339(account.created_at_ms),
    }
}

/// Two-factor on, as every service-account route asks (400 without).
async fn two_factor_required(engine: &Engine, owner: &User) -> Result<(), Refusal> {
    let on = engine
        .accounts
        .two_factor_on(&owner.id.0)
        .await
        .map_err(at("resource.service_accounts"))?;
    match on {
        true => Ok(()),
        false => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "resource.service_accounts.2fa_disabled",
            "service accounts take two-factor authentication: turn it on first",
        )),
    }
}

/// `GET resource/service_accounts`: the caller's service accounts.
async fn list_service_accounts(
    State(engine): State<Engine>,
    Managing(caller): Managing,
) -> Result<Json<Vec<ServiceAccountView>>, Refusal> {
    two_factor_required(&engine, &caller.user).await?;
    let accounts = engine
        .accounts
        .service_accounts(&caller.user)
        .await
        .map_err(at("resource.service_accounts"))?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| service_account_view(&caller.user, a))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
struct ServiceAccountParams {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    totp_code: Option<String>,
}

/// `POST resource/service_accounts {role?, totp_code}` (an addition: the
/// spec's operators make them): 201 with the new service account.
async fn create_service_account(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    Params(p): Params<ServiceAccountParams>,
) -> Result<(StatusCode, Json<ServiceAccountView>), Refusal> {
    let area = "resource.service_accounts";
    two_factor_required(&engine, &caller.user).await?;
    let account = engine
        .accounts
        .create_service_account(
            &caller.user,
            p.role.as_deref().unwrap_or_default(),
            p.totp_code.as_deref(),
        )
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(service_account_view(&caller.user, account)),
    ))
}

/// `DELETE resource/service_accounts/{uid}?totp_code` (an addition): 204,
/// under the funds rule (422 saying what to move first).
async fn delete_service_account(
    State(engine): State<Engine>,
    Managing(caller): Managing,
    Path(uid): Path<String>,
    Query(p): Query<KeyDeleteParams>,
) -> Result<StatusCode, Refusal> {
    two_factor_required(&engine, &caller.user).await?;
    engine
        .close_service_account(&caller.user, &uid, p.totp_code.as_deref())
        .await
        .map_err(at("resource.service_accounts"))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- The activity log ----

#[derive(Debug, Deserialize)]
struct ActivityParams {
    #[serde(default)]
    time_from: Option<String>,
    #[serde(default)]
    time_to: Option<String>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// `API_V2_Entities_Activity`.
#[derive(Debug, Serialize)]
struct ActivityView {
    id: i64,
    user_ip: String,
    /// Not looked up: no address database ships with the server.
    user_ip_country: Option<String>,
    user_agent: String,
    topic: String,
    action: String,
    result: String,
    data: String,
    created_at: String,
}

impl From<Activity> for ActivityView {
    fn from(a: Activity) -> Self {
        ActivityView {
            id: a.id,
            user_ip: a.user_ip,
            user_ip_country: None,
            user_agent: a.user_agent,
            topic: a.topic,
            action: a.action,
            result: a.result,
            data: a.data,
            created_at: engine::rfc3339(a.created_at_ms),
        }
    }
}

/// `GET resource/users/activity/{topic}` (`all`, `password`, `session`,
/// `otp`; `api_keys` too): newest first, `limit` (1 to 100, default 100) a
/// page; the headers `Total`, `Page` and `Per-Page` say where the page is.
async fn activity(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(topic): Path<String>,
    Query(p): Query<ActivityParams>,
) -> Result<(HeaderMap, Json<Vec<ActivityView>>), Refusal> {
    let area = "resource.user";
    let topic = match topic.as_str() {
        "all" => None,
        "session" => Some(Topic::Session),
        "password" => Some(Topic::Password),
        "otp" => Some(Topic::Otp),
        "api_keys" => Some(Topic::ApiKeys),
        _ => {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "resource.user.wrong_topic",
                "topic must be all, session, password, otp or api_keys",
            ))
        }
    };
    let number = |field, text, range| page_number(area, field, text, range);
    const SECS: std::ops::RangeInclusive<i64> = 0..=253_402_300_799;
    let filter = ActivityFilter {
        topic,
        from_ms: number("time_from", p.time_from.as_deref(), SECS)?.map(|s| s * 1000),
        to_ms: number("time_to", p.time_to.as_deref(), SECS)?.map(|s| s * 1000 + 999),
        result: match p.result.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Some(Outcome::parse(r).map_err(at(area))?),
            None => None,
        },
    };
    let page = number("page", p.page.as_deref(), 1..=1_000_000)?.unwrap_or(1);
    let per_page = number("limit", p.limit.as_deref(), 1..=100)?.unwrap_or(100);
    let (rows, total) = engine
        .accounts
        .activities(&caller.user.id.0, &filter, page as u32, per_page as u32)
        .await
        .map_err(at(area))?;
    Ok((
        paged(total, page, per_page),
        Json(rows.into_iter().map(ActivityView::from).collect()),
    ))
}

/// A whole number parameter within `range`, if given.
fn page_number(
    area: &'static str,
    field: &'static str,
    text: Option<&str>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Refusal> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(at(area)(engine::Error::invalid(
                field,
                format!(
                    "{field} must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            ))),
        },
    }
}

/// The headers saying where a page is: `Total`, `Page`, `Per-Page`.
fn paged(total: i64, page: i64, per_page: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [("total", total), ("page", page), ("per-page", per_page)] {
        headers.insert(name, HeaderValue::from(value));
    }
    headers
}

// ---- E-mail codes ----

#[derive(Debug, Deserialize)]
struct EmailParams {
    email: String,
    /// No captcha runs here; a client that sends one is not refused.
    #[serde(default)]
    #[allow(dead_code)]
    captcha_response: Option<String>,
}

/// `POST identity/users/email/generate_code`: 201, a confirmation code sent
/// if an account has the address unconfirmed (the same answer either way).
async fn email_generate_code(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<EmailParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    engine
        .accounts
        .request_email_confirmation(&p.email, &seen.address, &engine.mail)
        .await
        .map_err(at("identity.user"))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({}))))
}

#[derive(Debug, Deserialize)]
struct TokenParams {
    token: String,
}

/// `POST identity/users/email/confirm_code {token}`: 201 with the user, its
/// address confirmed (level 1).
async fn email_confirm_code(
    State(engine): State<Engine>,
    Params(p): Params<TokenParams>,
) -> Result<(StatusCode, Json<UserWithFullInfo>), Refusal> {
    let user = engine
        .accounts
        .confirm_email(&p.token)
        .await
        .map_err(at("identity.user"))?;
    Ok((
        StatusCode::CREATED,
        Json(full_info(&engine, &user, "").await?),
    ))
}

/// `POST identity/users/password/generate_code {email}`: 201, a reset code
/// (and link) sent if an account has the address. The same answer either
/// way: unlike the spec's 404, nobody learns which addresses have accounts.
async fn password_generate_code(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<EmailParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    engine
        .accounts
        .request_password_reset(&p.email, &seen.address, &engine.mail)
        .await
        .map_err(at("identity.user"))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({}))))
}

#[derive(Debug, Deserialize)]
struct ResetParams {
    reset_password_token: String,
    password: String,
    confirm_password: String,
}

/// `POST identity/users/password/confirm_code`: 201, the new password set
/// and every session and token of the account ended; a code used, expired
/// or outdated is 404 (`identity.user.reset_password_token_not_found`).
async fn password_confirm_code(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Params(p): Params<ResetParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    engine
        .accounts
        .reset_password(
            &p.reset_password_token,
            &p.password,
            &p.confirm_password,
            &seen,
        )
        .await
        .map_err(|err| match err {
            engine::Error::Invalid {
                field: "reset_key",
                message,
            } => Refusal::new(
                StatusCode::NOT_FOUND,
                "identity.user.reset_password_token_not_found",
                &message,
            ),
            engine::Error::Invalid {
                field: "password_repeat",
                message,
            } => Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "identity.user.invalid_confirm_password",
                &message,
            ),
            other => at("identity.user")(other),
        })?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({}))))
}

// ---- Profiles and labels ----

#[derive(Debug, Deserialize)]
struct ProfileParams {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    dob: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    postcode: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    metadata: Option<String>,
    /// `true` (or "true") submits the profile.
    #[serde(default)]
    confirm: Option<serde_json::Value>,
}

impl ProfileParams {
    fn fields(self) -> Result<engine::accounts::profiles::ProfileFields, Refusal> {
        let confirm = match &self.confirm {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => {
                return Err(Refusal::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "resource.profile.invalid_confirm",
                    "confirm is true or false",
                ))
            }
        };
        Ok(engine::accounts::profiles::ProfileFields {
            first_name: self.first_name,
            last_name: self.last_name,
            dob: self.dob,
            address: self.address,
            postcode: self.postcode,
            city: self.city,
            country: self.country,
            metadata: self.metadata,
            confirm,
        })
    }
}

/// `POST resource/profiles`: 201 with the new profile (409 when there is one).
async fn create_profile(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<ProfileParams>,
) -> Result<(StatusCode, Json<ProfileView>), Refusal> {
    let area = "resource.profile";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    let profile = engine
        .accounts
        .create_profile(&caller.user, &p.fields()?)
        .await
        .map_err(|err| match err {
            engine::Error::Conflict(message) => {
                Refusal::new(StatusCode::CONFLICT, "resource.profile.exist", &message)
            }
            other => at(area)(other),
        })?;
    Ok((StatusCode::CREATED, Json(profile.into())))
}

/// `PUT resource/profiles`: the profile changed (drafted again unless
/// `confirm`); 404 without one.
async fn update_profile(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<ProfileParams>,
) -> Result<Json<ProfileView>, Refusal> {
    let area = "resource.profile";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    let profile = engine
        .accounts
        .update_profile_fields(&caller.user, &p.fields()?)
        .await
        .map_err(at(area))?;
    Ok(Json(profile.into()))
}

/// `GET resource/profiles/me`: 404 when the account has none.
async fn my_profile(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<ProfileView>, Refusal> {
    let area = "resource.profile";
    match engine
        .accounts
        .profile(&caller.user.id.0)
        .await
        .map_err(at(area))?
    {
        Some(profile) => Ok(Json(profile.into())),
        None => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "resource.profile.not_exist",
            "the account has no profile yet",
        )),
    }
}

/// `GET resource/labels`: the server's labels and the person's.
async fn list_labels(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<Vec<LabelView>>, Refusal> {
    let labels = engine
        .accounts
        .labels(&caller.user)
        .await
        .map_err(at("resource.labels"))?;
    Ok(Json(labels.into_iter().map(LabelView::from).collect()))
}

#[derive(Debug, Deserialize)]
struct LabelParams {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct ValueParams {
    value: String,
}

/// `POST resource/labels {key, value}`: 201 with the new public label.
async fn add_label(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<LabelParams>,
) -> Result<(StatusCode, Json<LabelView>), Refusal> {
    let area = "resource.labels";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    let label = engine
        .accounts
        .add_label(&caller.user, &p.key, &p.value)
        .await
        .map_err(at(area))?;
    Ok((StatusCode::CREATED, Json(label.into())))
}

async fn get_label(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(key): Path<String>,
) -> Result<Json<LabelView>, Refusal> {
    let label = engine
        .accounts
        .label(&caller.user, &key)
        .await
        .map_err(at("resource.labels"))?;
    Ok(Json(label.into()))
}

/// `PATCH resource/labels/{key} {value}`: a public label's new value.
async fn update_label(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(key): Path<String>,
    Params(p): Params<ValueParams>,
) -> Result<Json<LabelView>, Refusal> {
    let area = "resource.labels";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    let label = engine
        .accounts
        .update_label(&caller.user, &key, &p.value)
        .await
        .map_err(at(area))?;
    Ok(Json(label.into()))
}

/// `DELETE resource/labels/{key}`: 204.
async fn delete_label(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(key): Path<String>,
) -> Result<StatusCode, Refusal> {
    let area = "resource.labels";
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))?;
    engine
        .accounts
        .remove_label(&caller.user, &key)
        .await
        .map_err(at(area))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Parameters and errors ----

/// A signed-in caller that may manage how the account is reached (two-factor
/// codes, API keys, the password): a session with its CSRF token, or an
/// account token; never an ACL token or an API key. Refused (403
/// `authz.access_denied`) before the body is read, so a credential without
/// the right learns nothing of what the route takes.
struct Managing(Caller);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Managing {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        let SignedIn(caller) = SignedIn::from_request_parts(parts, state).await?;
        match caller.permits(Access::ManageAccess) {
            Ok(()) => Ok(Managing(caller)),
            Err(denied) => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "authz.access_denied",
                &denied.to_string(),
            )
            .into_response()),
        }
    }
}

/// Parameters of a request as a form (`application/x-www-form-urlencoded`,
/// as the spec's `formData`) or a JSON object; a browser's `_csrf` is the
/// gate's, no parameter. Missing or malformed ones answer 400.
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Params<T> {
    type Rejection = Refusal;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Refusal> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Refusal::params(e.body_text()))?;
        let mut object = if content_type.starts_with("application/json") {
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(object)) => object,
                Ok(_) => return Err(Refusal::params("the body is a JSON object".into())),
                Err(e) => return Err(Refusal::params(e.to_string())),
            }
        } else {
            // A form, or no body at all (every parameter then missing).
            form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect()
        };
        object.remove("_csrf");
        serde_path_to_error::deserialize(serde_json::Value::Object(object))
            .map(Params)
            .map_err(|e| Refusal::params(e.to_string()))
    }
}

/// A refusal in the spec's format: `{"errors": [code], "message": words}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Refusal {
            status,
            code: code.to_string(),
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// Missing or malformed parameters (serde names which).
    fn params(message: String) -> Self {
        let code = match message.split('`').nth(1) {
            Some(field) if message.starts_with("missing field") => format!("missing_{field}"),
            _ => "invalid_params".to_string(),
        };
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
            retry_after: None,
        }
    }
}

/// Turns an engine error into the refusal of a route of `area`
/// (`identity.session`, `resource.otp`, ...).
fn at(area: &'static str) -> impl Fn(engine::Error) -> Refusal {
    move |err| {
        use engine::Error::*;
        let reason = match &err {
            Invalid {
                field: "otp_code" | "code",
                ..
            } => "invalid_otp".to_string(),
            Invalid { field, .. } => format!("invalid_{field}"),
            UsernameTaken => "username_taken".into(),
            EmailTaken => "email_taken".into(),
            InvalidCredentials => "invalid_params".into(),
            CodeRequired => "missing_otp".into(),
            Unauthenticated => "unauthenticated".into(),
            Forbidden(_) => "forbidden".into(),
            NotFound(_) => "not_found".into(),
            Conflict(_) => "conflict".into(),
            Throttled { .. } | TooMany(_) => "too_many_attempts".into(),
            Busy { .. } | Unavailable(_) => "unavailable".into(),
            _ if err.is_internal() => "internal_error".into(),
            _ => "refused".into(),
        };
        let status = match &err {
            Invalid { .. } | UsernameTaken | EmailTaken => StatusCode::UNPROCESSABLE_ENTITY,
            // "2FA has (not) been enabled": the spec's 400.
            Conflict(_) if area == "resource.otp" => StatusCode::BAD_REQUEST,
            Conflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => http_status(&err),
        };
        let message = if err.is_internal() {
            tracing::error!(error = ?err, "request failed");
            "internal error".to_string()
        } else {
            err.to_string()
        };
        Refusal {
            status,
            code: format!("{area}.{reason}"),
            message,
            retry_after: err.retry_after().map(|w| w.as_secs().max(1)),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "errors": [self.code], "message": self.message })),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
