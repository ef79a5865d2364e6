use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::settings::PasswordCard;
use super::{action_error, asks_code, form_error};
use crate::api::security::{
    link_nostr_key, security_access, security_activity, security_api_keys, security_applications,
    security_profile, security_sessions, AccessView, AclView, CreateAcl, CreateApiKey,
    DeleteAccount, DeleteAcl, DeleteApiKey, DisableTwoFactor, EnableTwoFactor, EndOtherSessions,
    EndSession, IssueAclToken, LnurlLinkCreate, ProfileView, RevokeAclToken, RevokeApplication,
    StartTwoFactor, UnlinkKey, UpdateProfile, COMMON_ENDPOINTS,
};
use crate::api::session::{provider_error_message, Account};
use crate::api::ApiError;
use crate::components::{CopyButton, Field, QrCode, SignedIn};

lazy_wallet_page!(SecurityPage, "Security · Ampere", Security);

/// Who the account is and how it is reached: the profile, the password, the
/// access control lists with their tokens, the keys that sign in, and deleting
/// the account. The forms stay put; only the lists reload after a change (a
/// form inside a reloading boundary would lose what was typed, and its
/// signals with it).
#[component]
fn Security(account: Account) -> impl IntoView {
    let profile = ServerAction::<UpdateProfile>::new();
    let create = ServerAction::<CreateAcl>::new();
    let delete = ServerAction::<DeleteAcl>::new();
    let issue = ServerAction::<IssueAclToken>::new();
    let revoke = ServerAction::<RevokeAclToken>::new();
    let unlink = ServerAction::<UnlinkKey>::new();
    let link_nostr = nostr_linking();
    let link_wallet = ServerAction::<LnurlLinkCreate>::new();
    // Pressed once a wallet has answered the link code.
    let wallet_linked = RwSignal::new(0u32);
    // The profile as it was when the page opened (its form then holds it).
    let opened = Resource::new(|| (), |_| security_profile());
    let lists = Resource::new(
        move || {
            (
                create.version().get(),
                delete.version().get(),
                issue.version().get(),
                revoke.version().get(),
                unlink.version().get(),
                link_nostr.version().get(),
                wallet_linked.get(),
            )
        },
        |_| security_access(),
    );
    let csrf = account.csrf.clone();
    let actions = AclActions {
        delete,
        issue,
        revoke,
        csrf: csrf.clone(),
    };
    let (profile_csrf, delete_csrf, otp_csrf) = (csrf.clone(), csrf.clone(), csrf.clone());
    view! {
        <h1>"Security"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let csrf = profile_csrf.clone();
                Suspend::new(async move {
                    opened.await.map(|view| view! { <ProfileCard view action=profile csrf /> })
                })
            }}
        </Suspense>
        <PasswordCard csrf=csrf.clone() />
        <Suspense fallback=|| ()>
            {move || {
                let csrf = otp_csrf.clone();
                Suspend::new(async move {
                    opened.await.ok().filter(|view| view.has_password).map(|view| view! {
                        <TwoFactorCard on=view.two_factor csrf />
                    })
                })
            }}
        </Suspense>
        <SessionsCard opened csrf=csrf.clone() />
        <ActivityCard />
        <AclsCard lists create actions csrf=csrf.clone() />
        <ApiKeysCard csrf=csrf.clone() />
        <ApplicationsCard csrf=csrf.clone() />
        <SignInsCard lists unlink link_nostr link_wallet wallet_linked csrf=csrf.clone() />
        <Suspense fallback=|| ()>
            {move || {
                let csrf = delete_csrf.clone();
                Suspend::new(async move {
                    opened.await.map(|view| view! { <DeleteCard has_password=view.has_password csrf /> })
                })
            }}
        </Suspense>
    }
}

/// Links the key of the browser's Nostr extension (NIP-07): it signs a
/// NIP-98 event for the linking call. Dispatched with the session's CSRF
/// token (the closure holds nothing: on the server, where it is never run, a
/// local action must be droppable from any thread).
fn nostr_linking() -> Action<String, Result<(), ApiError>> {
    Action::new_local(|csrf: &String| {
        let csrf = csrf.clone();
        async move {
            #[cfg(feature = "hydrate")]
            {
                let origin = leptos::prelude::window()
                    .location()
                    .origin()
                    .unwrap_or_default();
                let event =
                    super::sign_in::browser::nostr_sign(&format!("{origin}/api/ui/link_nostr_key"))
                        .await
                        .map_err(|message| ApiError::new(&message))?;
                link_nostr_key(event, csrf).await
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (link_nostr_key, csrf);
                Err(ApiError::new("a Nostr extension signs in the browser only"))
            }
        }
    })
}

#[component]
fn ProfileCard(
    view: ProfileView,
    action: ServerAction<UpdateProfile>,
    csrf: String,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="profile-title">
            <h2 id="profile-title">"Profile"</h2>
            <ActionForm action attr:class="form">
                <input type="hidden" name="_csrf" value=csrf />
                <Field label="Display name" name="display_name" required=false
                    value=RwSignal::new(view.display_name.unwrap_or_default())
                    error=action_error(action, Some("display_name")) />
                <Field label="E-mail address" name="email" kind="email" autocomplete="email" required=false
                    value=RwSignal::new(view.email.unwrap_or_default())
                    error=action_error(action, Some("email")) />
                <p class="hint">"Where a password reset link goes. Leave empty to remove it."</p>
                {view.has_password.then(|| view! {
                    <Field label="Your password (to change the e-mail)" name="password" id="profile-password" kind="password"
                        autocomplete="current-password" required=false
                        error=action_error(action, Some("password")) />
                })}
                <p class="form-error" role="alert">{move || form_error(action, &["display_name", "email", "password"]).get()}</p>
                <button type="submit" disabled=move || action.pending().get()>"Save profile"</button>
                {move || matches!(action.value().get(), Some(Ok(()))).then(|| view! {
                    <p class="success" role="status">"Profile saved."</p>
                })}
            </ActionForm>
        </section>
    }
}

/// Two-factor authentication: set up by scanning a QR code into an
/// authenticator app and switched on by a first code of it; off again with a
/// code. Only for an account with a password (a wallet's key is its own
/// second factor).
#[component]
fn TwoFactorCard(on: bool, csrf: String) -> impl IntoView {
    let start = ServerAction::<StartTwoFactor>::new();
    let enable = ServerAction::<EnableTwoFactor>::new();
    let disable = ServerAction::<DisableTwoFactor>::new();
    let on = RwSignal::new(on);
    let code = RwSignal::new(String::new());
    Effect::new(move |_| {
        if matches!(enable.value().get(), Some(Ok(()))) {
            on.set(true);
            code.set(String::new());
        }
    });
    Effect::new(move |_| {
        if matches!(disable.value().get(), Some(Ok(()))) {
            on.set(false);
            code.set(String::new());
            start.clear();
        }
    });
    let (start_csrf, enable_csrf, disable_csrf) = (csrf.clone(), csrf.clone(), csrf);
    let turn_on = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        enable.dispatch(EnableTwoFactor {
            otp_code: code.get_untracked(),
            _csrf: enable_csrf.clone(),
        });
    };
    let turn_off = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        disable.dispatch(DisableTwoFactor {
            otp_code: code.get_untracked(),
            _csrf: disable_csrf.clone(),
        });
    };
    let setting_up = move || {
        let start_csrf = start_csrf.clone();
        let turn_on = turn_on.clone();
        match start.value().get() {
            Some(Ok(setup)) => view! {
                <p>"Scan this code with an authenticator app (such as Aegis, FreeOTP or Google Authenticator), or type the key into it. Then enter the 6 digits it shows."</p>
                <QrCode text=setup.url label="QR code for your authenticator app" />
                <p>"Key: " <code data-testid="otp-secret">{setup.secret.clone()}</code> " " <CopyButton text=setup.secret label="Copy the key" /></p>
                <form class="form" on:submit=turn_on>
                    <Field label="Code from your app" name="otp_code" id="otp-enable-code"
                        autocomplete="one-time-code" inputmode="numeric" value=code
                        error=action_error(enable, Some("otp_code")) />
                    <p class="form-error" role="alert">{move || form_error(enable, &["otp_code"]).get()}</p>
                    <button type="submit" disabled=move || enable.pending().get()>"Turn on"</button>
                </form>
            }
            .into_any(),
            other => view! {
                <p class="form-error" role="alert">{other.and_then(Result::err).map(|e| e.error.message)}</p>
                <button type="button" disabled=move || start.pending().get()
                    on:click=move |_| { start.dispatch(StartTwoFactor { _csrf: start_csrf.clone() }); }>
                    "Set up two-factor authentication"
                </button>
            }
            .into_any(),
        }
    };
    view! {
        <section class="card" aria-labelledby="otp-title">
            <h2 id="otp-title">"Two-factor authentication"</h2>
            <Show when=move || on.get() fallback=move || view! {
                <p>"Off: your password alone signs you in."</p>
                {setting_up.clone()}
            }>
                <p class="success">"On: signing in with your password also asks for a code."</p>
                <form class="form" on:submit=turn_off.clone()>
                    <Field label="Code from your app (to turn it off)" name="otp_code" id="otp-disable-code"
                        autocomplete="one-time-code" inputmode="numeric" value=code
                        error=action_error(disable, Some("otp_code")) />
                    <p class="form-error" role="alert">{move || form_error(disable, &["otp_code"]).get()}</p>
                    <button type="submit" class="secondary" disabled=move || disable.pending().get()>"Turn off"</button>
                </form>
            </Show>
        </section>
    }
}

/// Signed API keys for scripts and bots: each reads every API, and writes the
/// wallet or the exchange if asked; its secret is shown once. Making or
/// deleting one asks the two-factor code of an account that has it on.
#[component]
fn ApiKeysCard(csrf: String) -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let delete = ServerAction::<DeleteApiKey>::new();
    let keys = Resource::new(
        move || (create.version().get(), delete.version().get()),
        |_| security_api_keys(),
    );
    let wallet = RwSignal::new(false);
    let trade = RwSignal::new(false);
    let code = RwSignal::new(String::new());
    let create_asks = asks_code(create);
    let delete_asks = asks_code(delete);
    let given_code = move || Some(code.get_untracked()).filter(|c| !c.is_empty());
    let (create_csrf, delete_csrf) = (csrf.clone(), csrf);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateApiKey {
            wallet: wallet.get_untracked().then(|| "on".to_string()),
            trade: trade.get_untracked().then(|| "on".to_string()),
            otp_code: given_code(),
            _csrf: create_csrf.clone(),
        });
    };
    let scopes = |scopes: &[String]| {
        scopes
            .iter()
            .map(|s| match s.as_str() {
                "read" => "reads",
                "wallet" => "pays from the wallet",
                "trade" => "trades",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    view! {
        <section class="card" aria-labelledby="api-keys-title">
            <h2 id="api-keys-title">"API keys"</h2>
            <p class="hint">"For scripts and bots: each request is signed with the key's secret (X-Auth-Apikey, X-Auth-Nonce, X-Auth-Signature = HMAC-SHA256 of nonce and key id)."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let delete_csrf = delete_csrf.clone();
                    Suspend::new(async move {
                        keys.await.map(|list| view! {
                            <ul class="sessions">
                                {list.into_iter().map(|key| {
                                    let (kid, csrf) = (key.kid.clone(), delete_csrf.clone());
                                    let label = format!("Delete key {}", key.kid);
                                    view! {
                                        <li data-testid="api-key">
                                            <code>{key.kid.clone()}</code>
                                            {(key.state != "active").then(|| view! { " " <span class="badge short">{key.state.clone()}</span> })}
                                            <br />
                                            <span class="hint">{format!("{} · made {}", scopes(&key.scopes), key.created_at.get(..10).unwrap_or_default())}</span>
                                            " "
                                            <button type="button" class="secondary small" aria-label=label
                                                on:click=move |_| { delete.dispatch(DeleteApiKey { kid: kid.clone(), otp_code: given_code(), _csrf: csrf.clone() }); }>
                                                "Delete"
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })
                    })
                }}
            </Transition>
            <form class="form" on:submit=submit>
                <label class="check"><input type="checkbox" bind:checked=wallet />" Pays from the wallet (invoices, payments, channels)"</label>
                <label class="check"><input type="checkbox" bind:checked=trade />" Trades on the exchange (orders, deposits, withdrawals)"</label>
                <Show when=move || create_asks.get() || delete_asks.get()>
                    <Field label="Two-factor code" name="otp_code" id="api-key-code"
                        autocomplete="one-time-code" inputmode="numeric" value=code
                        error=Signal::derive(move || action_error(create, Some("otp_code")).get().or_else(|| action_error(delete, Some("otp_code")).get())) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(create, &["otp_code"]).get().or_else(|| form_error(delete, &["otp_code"]).get())}</p>
                <button type="submit" disabled=move || create.pending().get()>"Make an API key"</button>
            </form>
            {move || create.value().get().and_then(Result::ok).map(|key| view! {
                <div class="success" role="status">
                    <p>"Key made. Copy its secret now: it is not shown again."</p>
                    <p>"Key ID: " <code data-testid="new-api-key-kid">{key.kid.clone()}</code> " " <CopyButton text=key.kid label="Copy the key ID" /></p>
                    <p>"Secret: " <code data-testid="new-api-key-secret">{key.secret.clone()}</code> " " <CopyButton text=key.secret label="Copy the secret" /></p>
                </div>
            })}
        </section>
    }
}

/// What happened to the account lately, and from where: sign-ins of every
/// way (refused ones too), sign-outs, password and two-factor changes.
/// The applications the person let act for them (Ampere as an OAuth
/// provider), each revoked with one click.
#[component]
fn ApplicationsCard(csrf: String) -> impl IntoView {
    let revoke = ServerAction::<RevokeApplication>::new();
    let apps = Resource::new(move || revoke.version().get(), |_| security_applications());
    view! {
        <section class="card" aria-labelledby="applications-title">
            <h2 id="applications-title">"Authorised applications"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let csrf = csrf.clone();
                    Suspend::new(async move {
                        apps.await.map(|list| {
                            if list.is_empty() {
                                return view! { <p class="hint">"No application acts for you."</p> }.into_any();
                            }
                            view! {
                                <ul class="sessions">
                                    {list.into_iter().map(|app| {
                                        let (id, csrf) = (app.id.clone(), csrf.clone());
                                        let label = format!("Revoke {}", app.client_name);
                                        view! {
                                            <li data-testid="application">
                                                <strong>{app.client_name.clone()}</strong>
                                                <br />
                                                <span class="hint">{format!(
                                                    "may {} · authorised {} · last used {}",
                                                    app.scopes.join("; "),
                                                    app.authorised_at.get(..10).unwrap_or_default(),
                                                    app.last_used_at.get(..10).unwrap_or_default(),
                                                )}</span>
                                                " "
                                                <button type="button" class="secondary small" aria-label=label
                                                    on:click=move |_| { revoke.dispatch(RevokeApplication { id: id.clone(), _csrf: csrf.clone() }); }>
                                                    "Revoke"
                                                </button>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        })
                    })
                }}
            </Transition>
            <p class="form-error" role="alert">{move || form_error(revoke, &[]).get()}</p>
        </section>
    }
}

#[component]
fn ActivityCard() -> impl IntoView {
    let activity = Resource::new(|| (), |_| security_activity());
    let when = |at: &str| at.replace('T', " ").get(..16).unwrap_or(at).to_string();
    view! {
        <section class="card" aria-labelledby="activity-title">
            <h2 id="activity-title">"Recent activity"</h2>
            <p class="hint">"If you see a sign-in you do not know, change your password and turn on two-factor authentication."</p>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    activity.await.map(|rows| view! {
                        <ul class="activity">
                            {rows.into_iter().map(|row| {
                                let outcome = match row.result.as_str() {
                                    "failed" => Some("failed"),
                                    "denied" => Some("refused"),
                                    _ => None,
                                };
                                view! {
                                    <li data-testid="activity">
                                        <strong>{row.what}</strong>
                                        {outcome.map(|o| view! { " " <span class="badge short">{o}</span> })}
                                        <br />
                                        <span class="hint">{format!("{} · {} · {}", when(&row.at), row.device, row.address)}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    })
                })}
            </Suspense>
        </section>
    }
}

/// The account's signed-in browsers: where and when, and signing one (or
/// every other) out.
#[component]
fn SessionsCard(opened: Resource<Result<ProfileView, ApiError>>, csrf: String) -> impl IntoView {
    // Signing browsers out takes the password (where the account has one).
    let password = RwSignal::new(String::new());
    let given = move || Some(password.get_untracked()).filter(|p| !p.is_empty());
    let end = ServerAction::<EndSession>::new();
    let end_others = ServerAction::<EndOtherSessions>::new();
    let sessions = Resource::new(
        move || (end.version().get(), end_others.version().get()),
        |_| security_sessions(),
    );
    let when = |at: &str| at.replace('T', " ").get(..16).unwrap_or(at).to_string();
    let others_csrf = csrf.clone();
    view! {
        <section class="card" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Signed-in browsers"</h2>
            <p class="hint">"Every browser signed in to this account. Sign out one you do not know, then change your password."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let csrf = csrf.clone();
                    Suspend::new(async move {
                        sessions.await.map(|list| view! {
                            <ul class="sessions">
                                {list.into_iter().map(|row| {
                                    let (handle, csrf) = (row.handle.clone(), csrf.clone());
                                    let label = format!("Sign out {} ({})", row.device, row.address);
                                    view! {
                                        <li data-testid="session">
                                            <strong>{row.device.clone()}</strong>
                                            {row.current.then(|| view! { " " <span class="badge">"This browser"</span> })}
                                            <br />
                                            <span class="hint">
                                                {format!("{} · signed in {} · last seen {}", row.address, when(&row.signed_in_at), when(&row.seen_at))}
                                            </span>
                                            {(!row.current).then(|| view! {
                                                " "
                                                <button type="button" class="secondary small" aria-label=label
                                                    on:click=move |_| { end.dispatch(EndSession { handle: handle.clone(), password: given(), _csrf: csrf.clone() }); }>
                                                    "Sign out"
                                                </button>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })
                    })
                }}
            </Transition>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    opened.await.ok().filter(|view| view.has_password).map(|_| view! {
                        <Field label="Your password (to sign browsers out)" name="password" id="sessions-password" kind="password"
                            autocomplete="current-password" required=false value=password
                            error=action_error(end, Some("password")) />
                    })
                })}
            </Suspense>
            <p class="actions">
                <button type="button" class="secondary" disabled=move || end_others.pending().get()
                    on:click=move |_| { end_others.dispatch(EndOtherSessions { password: given(), _csrf: others_csrf.clone() }); }>
                    "Sign out every other browser"
                </button>
            </p>
            {move || end_others.value().get().and_then(Result::ok).map(|n| view! {
                <p class="success" role="status">{match n { 0 => "No other browser was signed in.".to_string(), 1 => "1 other browser signed out.".to_string(), n => format!("{n} other browsers signed out.") }}</p>
            })}
            <p class="form-error" role="alert">
                {move || action_error(end, None).get().or_else(|| {
                    end_others.value().get().and_then(Result::err).map(|e| e.error.message)
                })}
            </p>
        </section>
    }
}

/// The actions every ACL row shares.
#[derive(Clone)]
struct AclActions {
    delete: ServerAction<DeleteAcl>,
    issue: ServerAction<IssueAclToken>,
    revoke: ServerAction<RevokeAclToken>,
    csrf: String,
}

#[component]
fn AclsCard(
    lists: Resource<Result<AccessView, ApiError>>,
    create: ServerAction<CreateAcl>,
    actions: AclActions,
    csrf: String,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let chosen = RwSignal::new(Vec::<&'static str>::new());
    let more = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut endpoints: Vec<String> = chosen
            .get_untracked()
            .iter()
            .map(|e| e.to_string())
            .collect();
        endpoints.push(more.get_untracked());
        create.dispatch(CreateAcl {
            name: name.get_untracked(),
            endpoints: endpoints.join("\n"),
            _csrf: csrf.clone(),
        });
    };
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(()))) {
            name.set(String::new());
            chosen.set(Vec::new());
            more.set(String::new());
        }
    });
    let issued = actions.issue;
    let errors = (actions.delete, actions.revoke);
    view! {
        <section class="card" aria-labelledby="acls-title">
            <h2 id="acls-title">"Access control lists"</h2>
            <p class="hint">"An ACL token works as a bearer token on every API, for the requests its list allows and nothing else. It lives until you revoke it, delete its list or change your password."</p>
            <form class="form" on:submit=submit>
                <Field label="List name" name="name" value=name error=action_error(create, Some("name")) />
                <fieldset>
                    <legend>"Allowed requests"</legend>
                    {COMMON_ENDPOINTS.into_iter().map(|endpoint| view! {
                        <label class="check">
                            <input type="checkbox" value=endpoint
                                prop:checked=move || chosen.with(|c| c.contains(&endpoint))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| {
                                        c.retain(|e| *e != endpoint);
                                        if on {
                                            c.push(endpoint);
                                        }
                                    });
                                } />
                            <code>{endpoint}</code>
                        </label>
                    }).collect_view()}
                </fieldset>
                <div class="field">
                    <label for="acl-more">"More requests, one per line"</label>
                    <textarea id="acl-more" rows="3" placeholder="GET /rest/v1/history.csv"
                        aria-describedby="acl-more-hint acl-more-error"
                        prop:value=move || more.get()
                        on:input=move |ev| more.set(event_target_value(&ev))></textarea>
                    <p class="hint" id="acl-more-hint">"METHOD /path; * stands for one whole path segment, as in GET /lnm/positions/*"</p>
                    <p class="field-error" id="acl-more-error" role="alert">{move || action_error(create, Some("allowed_endpoints")).get()}</p>
                </div>
                <p class="form-error" role="alert">{move || form_error(create, &["name", "allowed_endpoints"]).get()}</p>
                <button type="submit" disabled=move || create.pending().get()>"Create list"</button>
            </form>
            {move || issued.value().get().and_then(Result::ok).map(|token| view! {
                <div class="review" role="status">
                    <p class="success">"Your ACL token. It is shown once: copy it now."</p>
                    <p class="copyable">
                        <code class="wrap small" data-testid="new-acl-token">{token.token.clone().unwrap_or_default()}</code>
                        <CopyButton text=token.token.unwrap_or_default() label="Copy the token" />
                    </p>
                </div>
            })}
            <p class="form-error" role="alert">
                {move || action_error(issued, None).get()
                    .or_else(|| action_error(errors.0, None).get())
                    .or_else(|| action_error(errors.1, None).get())}
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let actions = actions.clone();
                    Suspend::new(async move {
                        match lists.await {
                            Ok(view) if view.acls.is_empty() => {
                                view! { <p class="empty">"No list yet."</p> }.into_any()
                            }
                            Ok(view) => view
                                .acls
                                .into_iter()
                                .map(|acl| view! { <AclRow acl actions=actions.clone() /> })
                                .collect_view()
                                .into_any(),
                            Err(err) => view! { <p class="form-error">{err.error.message}</p> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn AclRow(acl: AclView, actions: AclActions) -> impl IntoView {
    let AclActions {
        delete,
        issue,
        revoke,
        csrf,
    } = actions;
    let (id, id2, name) = (acl.id.clone(), acl.id.clone(), acl.name.clone());
    let csrf2 = csrf.clone();
    let tokens = acl.tokens.clone();
    view! {
        <article class="row" data-testid="acl">
            <div class="grow">
                <strong class="alias">{acl.name.clone()}</strong>
                <ul class="small">
                    {acl.allowed_endpoints.into_iter().map(|e| view! { <li><code>{e}</code></li> }).collect_view()}
                </ul>
                {tokens.into_iter().map(|token| {
                    let (token_id, created) = (token.id, token.created_at);
                    let (acl_id, csrf, label) = (id.clone(), csrf.clone(), format!("Revoke token {}", token_id.get(..8).unwrap_or(&token_id)));
                    view! {
                        <p class="hint" data-testid="acl-token">
                            {format!("Token {} · created {}", token_id.get(..8).unwrap_or(&token_id), created.replace('T', " ").get(..16).unwrap_or(&created))}
                            " "
                            <button type="button" class="secondary small" aria-label=label
                                on:click=move |_| { revoke.dispatch(RevokeAclToken { acl_id: acl_id.clone(), token_id: token_id.clone(), _csrf: csrf.clone() }); }>
                                "Revoke"
                            </button>
                        </p>
                    }
                }).collect_view()}
            </div>
            <div class="actions">
                <button type="button" class="secondary small" aria-label=format!("New token for {name}")
                    on:click={
                        let (acl_id, csrf) = (id2.clone(), csrf2.clone());
                        move |_| { issue.dispatch(IssueAclToken { acl_id: acl_id.clone(), _csrf: csrf.clone() }); }
                    }>
                    "New token"
                </button>
                <button type="button" class="danger small" aria-label=format!("Delete list {}", acl.name)
                    on:click=move |_| { delete.dispatch(DeleteAcl { acl_id: id2.clone(), _csrf: csrf2.clone() }); }>
                    "Delete"
                </button>
            </div>
        </article>
    }
}

/// What a linked sign-in key is, for people.
fn key_kind_name(kind: &str) -> &'static str {
    match kind {
        "nostr" => "Nostr key",
        "joule" => "Lightning node key (Joule)",
        "google" => "Google account",
        "keycloak" => "Keycloak account",
        "github" => "GitHub account",
        _ => "Lightning wallet key (LNURL-auth)",
    }
}

/// A linked key as the list shows it: a provider's subject whole, a public
/// key's start.
fn key_shown(pubkey: &str) -> String {
    match pubkey.split_once(':') {
        Some((_, subject)) => subject.to_string(),
        None => format!("{}…", pubkey.get(..16).unwrap_or(pubkey)),
    }
}

#[component]
fn SignInsCard(
    lists: Resource<Result<AccessView, ApiError>>,
    unlink: ServerAction<UnlinkKey>,
    link_nostr: Action<String, Result<(), ApiError>>,
    link_wallet: ServerAction<LnurlLinkCreate>,
    wallet_linked: RwSignal<u32>,
    csrf: String,
) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let came_back = move || {
        query.with(|q| {
            q.get("provider_error")
                .map(|reason| (false, provider_error_message(&reason).to_string()))
                .or_else(|| {
                    q.get("linked").map(|name| {
                        (
                            true,
                            format!("Your {} now signs in here.", key_kind_name(&name)),
                        )
                    })
                })
        })
    };
    let has_nostr = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| has_nostr.set(super::sign_in::browser::has_nostr()));
    let nostr_csrf = StoredValue::new(csrf.clone());
    view! {
        <section class="card" aria-labelledby="sign-ins-title">
            <h2 id="sign-ins-title">"Ways to sign in"</h2>
            {move || came_back().map(|(linked, message)| if linked {
                view! { <p class="success" role="status">{message}</p> }.into_any()
            } else {
                view! { <p class="form-error" role="alert">{message}</p> }.into_any()
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let csrf = csrf.clone();
                    Suspend::new(async move {
                        lists.await.map(|view| {
                            let link_csrf = csrf.clone();
                            view! {
                                <ul>
                                    <li>{if view.has_password { "Username and password" } else { "No password" }}</li>
                                    {view.keys.into_iter().map(|(pubkey, kind)| {
                                        let csrf = csrf.clone();
                                        let label = format!("Unlink {}", key_kind_name(&kind));
                                        view! {
                                            <li data-testid="linked-key">
                                                {key_kind_name(&kind)} " " <code class="small">{key_shown(&pubkey)}</code>
                                                " "
                                                <button type="button" class="secondary small" aria-label=label
                                                    on:click=move |_| { unlink.dispatch(UnlinkKey { pubkey: pubkey.clone(), kind: kind.clone(), _csrf: csrf.clone() }); }>
                                                    "Unlink"
                                                </button>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                                // Plain links: the answer sends the browser on to the provider.
                                <div class="actions">
                                    {view.providers.into_iter().map(|(name, label)| view! {
                                        <a class="button secondary" rel="external"
                                            href=format!("/api/v1/auth/{name}/link?_csrf={link_csrf}")>
                                            {format!("Link a {label} account")}
                                        </a>
                                    }).collect_view()}
                                </div>
                            }
                        })
                    })
                }}
            </Transition>
            <p class="actions">
                <button type="button" class="secondary" disabled=move || link_wallet.pending().get()
                    on:click=move |_| { link_wallet.dispatch(LnurlLinkCreate { _csrf: nostr_csrf.get_value() }); }>
                    "Link a Lightning wallet"
                </button>
            </p>
            {move || link_wallet.value().get().and_then(Result::ok).map(|link| {
                let uri = format!("lightning:{}", link.lnurl);
                view! {
                    <div class="review" data-testid="lnurl-link">
                        <a href=uri.clone() class="qr-link" aria-label="Open in a wallet on this device">
                            <QrCode text=uri.clone() label="QR code to link a Lightning wallet" />
                        </a>
                        <p class="copyable">
                            <code class="wrap small">{link.lnurl.clone()}</code>
                            <CopyButton text=link.lnurl label="Copy the LNURL" />
                        </p>
                        <p class="hint">"Scan it with a wallet that supports LNURL-auth: its key then signs in to this account too."</p>
                        <button type="button" class="secondary small"
                            on:click=move |_| wallet_linked.update(|n| *n += 1)>
                            "Done: show the list again"
                        </button>
                    </div>
                }
            })}
            <Show when=move || has_nostr.get()>
                <p class="actions">
                    <button type="button" class="secondary" disabled=move || link_nostr.pending().get()
                        on:click=move |_| { link_nostr.dispatch(nostr_csrf.get_value()); }>
                        "Link this browser's Nostr key"
                    </button>
                </p>
            </Show>
            <p class="form-error" role="alert">
                {move || action_error(unlink, None).get()
                    .or_else(|| link_wallet.value().get().and_then(Result::err).map(|e| e.error.message))
                    .or_else(|| link_nostr.value().get().and_then(Result::err).map(|e| e.error.message))}
            </p>
        </section>
    }
}

#[component]
fn DeleteCard(has_password: bool, csrf: String) -> impl IntoView {
    let action = ServerAction::<DeleteAccount>::new();
    let asks_code = asks_code(action);
    view! {
        <section class="card" aria-labelledby="delete-title">
            <h2 id="delete-title">"Delete the account"</h2>
            <p class="hint">"Everything of the account goes, for good. An account that still holds funds (wallet, channels, trading balance) is not deleted: move them first."</p>
            <ActionForm action attr:class="form">
                <input type="hidden" name="_csrf" value=csrf />
                {if has_password {
                    view! {
                        <Field label="Your password (to delete)" name="password" id="delete-password" kind="password"
                            autocomplete="current-password" error=action_error(action, Some("password")) />
                    }.into_any()
                } else {
                    view! { <input type="hidden" name="password" value="" /> }.into_any()
                }}
                <Show when=move || asks_code.get()>
                    <Field label="Two-factor code" name="otp_code" id="delete-code"
                        autocomplete="one-time-code" inputmode="numeric"
                        error=action_error(action, Some("otp_code")) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(action, &["password", "otp_code"]).get()}</p>
                <button type="submit" class="danger" disabled=move || action.pending().get()>"Delete my account"</button>
            </ActionForm>
        </section>
    }
}
