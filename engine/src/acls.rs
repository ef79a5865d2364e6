//! Access control lists (the LNbits ACLs): an account names a set of
//! `METHOD /path` patterns and issues tokens bound to it. An ACL token is a
//! bearer token that authenticates as the account on every API but may call
//! only what its ACL's patterns match, as they read *now*: updating an ACL
//! changes what its tokens may do at once, deleting it (or revoking a token)
//! voids them, in every process through the bus. Tokens are HS256 JWTs with a
//! key of their own, so no other kind of token passes for one.

use std::sync::Arc;

use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::events::{Bus, EventKind, Topic};
use crate::{now_ms, Database, Error, Result, User};

/// Most ACLs one account may hold.
pub const MAX_ACLS: i64 = 50;
/// Most patterns one ACL may list.
pub const MAX_ENDPOINTS: usize = 100;
/// Most live tokens one ACL may have.
pub const MAX_TOKENS: i64 = 100;
/// Longest ACL name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest pattern, in bytes.
const MAX_PATTERN_LEN: usize = 300;

/// The methods a pattern may name (those Ampere's APIs answer).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// One `METHOD /path` pattern: `*` stands for exactly one whole path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    method: &'static str,
    segments: Vec<String>,
}

impl Endpoint {
    /// Reads a pattern as a client wrote it: a method, one space, an absolute
    /// path of non-empty segments (printable ASCII, no query or fragment), `*`
    /// only as a whole segment.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::invalid(
                "allowed_endpoints",
                format!("{:?}: {why}", crate::cut(text, 80)),
            )
        };
        if text.len() > MAX_PATTERN_LEN {
            return Err(invalid("a pattern is at most 300 characters"));
        }
        let Some((method, path)) = text.split_once(' ') else {
            return Err(invalid(
                "a pattern is \"METHOD /path\", e.g. \"GET /api/v1/wallet\"",
            ));
        };
        let method = METHODS
            .into_iter()
            .find(|m| m.eq_ignore_ascii_case(method))
            .ok_or_else(|| invalid("the method is GET, POST, PUT, PATCH or DELETE"))?;
        let Some(rest) = path.strip_prefix('/') else {
            return Err(invalid("the path is absolute (starts with /)"));
        };
        if !is_api(path) {
            return Err(invalid(
                "a pattern names an API route: under /rest/, /api/ or /lnm",
            ));
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains(['?', '#']) {
            return Err(invalid(
                "the path is printable characters without spaces, query or fragment",
            ));
        }
        let segments: Vec<String> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').map(str::to_string).collect()
        };
        for segment in &segments {
            if segment.is_empty() {
                return Err(invalid(
                    "the path has no empty segment (//, or / at the end)",
                ));
            }
            if segment.contains('*') && segment != "*" {
                return Err(invalid(
                    "* stands for a whole segment only, as in /api/v1/payments/*",
                ));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("the path has no . or .. segment"));
            }
        }
        Ok(Endpoint { method, segments })
    }

    /// Whether a request of `method` to `path` (its path only, no query) matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut requested = rest.split('/').filter(|_| !rest.is_empty());
        for pattern in &self.segments {
            match requested.next() {
                Some(segment) if pattern == "*" && !segment.is_empty() => {}
                Some(segment) if segment == pattern => {}
                _ => return false,
            }
        }
        requested.next().is_none()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} /{}", self.method, self.segments.join("/"))
    }
}

/// Whether `path` is one of the APIs (the pages render the account's data
/// themselves, out of any pattern's reach: an ACL token never opens them).
pub fn is_api(path: &str) -> bool {
    path.starts_with("/rest/")
        || path.starts_with("/api/")
        || path == "/lnm"
        || path.starts_with("/lnm/")
}

/// What an ACL token may call: its ACL's patterns as they read now.
#[derive(Debug, Clone)]
pub struct Grant {
    pub acl_id: String,
    pub token_id: String,
    pub endpoints: Arc<[Endpoint]>,
}

impl Grant {
    pub fn allows(&self, method: &str, path: &str) -> bool {
        // HEAD reads what GET does.
        let method = if method == "HEAD" { "GET" } else { method };
        is_api(path) && self.endpoints.iter().any(|e| e.matches(method, path))
    }
}

/// An ACL as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Acl {
    pub id: String,
    pub name: String,
    pub allowed_endpoints: Vec<String>,
    pub created_at_ms: i64,
    /// Its live tokens, oldest first (never the token itself).
    pub tokens: Vec<AclToken>,
}

/// A token of an ACL as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AclToken {
    pub id: String,
    pub acl_id: String,
    pub created_at_ms: i64,
}

/// What an ACL token says: only its id. The account and version are read from
/// its row, so a token handed to a script does not show whose it is (an
/// account id is a credential where `--user-id-login` is on).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AclClaims {
    /// The token's id (its row in `acl_tokens`).
    jti: String,
    iat: i64,
}

/// The claims of a valid ACL token and what it may call.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: String,
    pub auth_version: i64,
    pub grant: Arc<Grant>,
}

#[derive(Clone)]
pub struct Acls {
    db: Database,
    bus: Bus,
    keys: Arc<(EncodingKey, DecodingKey, Validation)>,
    /// A token's account, version and grant (`None`: revoked or gone),
    /// remembered briefly; any change to an ACL or its tokens clears it in
    /// every process through the bus.
    grants: moka::sync::Cache<String, Option<Arc<Verified>>>,
    /// Bumped by every such change: a grant read while one happened is not
    /// remembered (it may be from before it).
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Acls {
    pub async fn load(db: &Database, bus: &Bus) -> Result<Self> {
        let key = db.secret("acl-jwt").await?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // An ACL token lives until it is revoked, its ACL deleted or the
        // account's password changed.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["jti"]);
        let grants: moka::sync::Cache<String, Option<Arc<Verified>>> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(5))
            .build();
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cache, changes) = (grants.clone(), generation.clone());
        bus.on_control(Box::new(move |event| match &event.kind {
            EventKind::AclChanged { .. } | EventKind::Resync => {
                changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                cache.invalidate_all();
            }
            EventKind::TokenRevoked { jti } => {
                changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                cache.invalidate(jti);
            }
            _ => {}
        }));
        Ok(Acls {
            db: db.clone(),
            bus: bus.clone(),
            keys: Arc::new((
                EncodingKey::from_secret(&key),
                DecodingKey::from_secret(&key),
                validation,
            )),
            grants,
            generation,
        })
    }

    /// The account's ACLs with their live tokens, oldest first.
    pub async fn list(&self, user: &User) -> Result<Vec<Acl>> {
        let rows = sqlx::query(
            "SELECT id, name, endpoints, created_at FROM acls WHERE user_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        let tokens = sqlx::query(
            "SELECT id, acl_id, created_at FROM acl_tokens WHERE user_id = $1 \
             AND auth_version = $2 ORDER BY created_at, id",
        )
        .bind(&user.id.0)
        .bind(user.auth_version)
        .fetch_all(self.db.pool())
        .await?;
        let tokens = tokens
            .iter()
            .map(|r| {
                Ok(AclToken {
                    id: r.try_get("id")?,
                    acl_id: r.try_get("acl_id")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(Acl {
                    tokens: tokens.iter().filter(|t| t.acl_id == id).cloned().collect(),
                    id,
                    name: r.try_get("name")?,
                    allowed_endpoints: stored_endpoints(&r.try_get::<String, _>("endpoints")?),
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Makes an ACL named `name` allowing `endpoints` (validated; duplicates
    /// kept once).
    pub async fn create(&self, user: &User, name: &str, endpoints: &[String]) -> Result<Acl> {
        let name = acl_name(name)?;
        let endpoints = endpoint_list(endpoints)?;
        let acl = Acl {
            id: crate::random_hex(16),
            name,
            allowed_endpoints: endpoints,
            created_at_ms: now_ms(),
            tokens: Vec::new(),
        };
        let (row, owner) = (acl.clone(), user.id.0.clone());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM acls WHERE user_id = $1")
                            .bind(&owner)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("n")?;
                    if held >= MAX_ACLS {
                        return Err(Error::TooMany(format!(
                            "an account may hold {MAX_ACLS} ACLs; delete one first"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO acls (id, user_id, name, endpoints, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&row.id)
                    .bind(&owner)
                    .bind(&row.name)
                    .bind(row.allowed_endpoints.join("\n"))
                    .bind(row.created_at_ms)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(acl)
    }

    /// Renames an ACL and/or replaces its patterns (absent: unchanged). Its
    /// tokens follow the new patterns from the next request on.
    pub async fn update(
        &self,
        user: &User,
        acl_id: &str,
        name: Option<&str>,
        endpoints: Option<&[String]>,
    ) -> Result<Acl> {
        let name = name.map(acl_name).transpose()?;
        let endpoints = endpoints.map(endpoint_list).transpose()?;
        let (id, owner) = (acl_id.to_string(), user.id.0.clone());
        let found = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE acls SET name = COALESCE($1, name), \
                         endpoints = COALESCE($2, endpoints) WHERE id = $3 AND user_id = $4",
                    )
                    .bind(name)
                    .bind(endpoints.map(|e| e.join("\n")))
                    .bind(&id)
                    .bind(&owner)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(changed == 1)
                })
            })
            .await?;
        if !found {
            return Err(no_such_acl());
        }
        self.changed(user, acl_id).await?;
        self.list(user)
            .await?
            .into_iter()
            .find(|acl| acl.id == acl_id)
            .ok_or_else(no_such_acl)
    }

    /// Deletes an ACL: its tokens stop working at once.
    pub async fn delete(&self, user: &User, acl_id: &str) -> Result<()> {
        let (id, owner) = (acl_id.to_string(), user.id.0.clone());
        let deleted = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    Ok(
                        sqlx::query("DELETE FROM acls WHERE id = $1 AND user_id = $2")
                            .bind(&id)
                            .bind(&owner)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected(),
                    )
                })
            })
            .await?;
        if deleted == 0 {
            return Err(no_such_acl());
        }
        self.changed(user, acl_id).await
    }

    /// Issues a token of the ACL `acl_id`: the token itself, shown this once.
    pub async fn issue(&self, user: &User, acl_id: &str) -> Result<(AclToken, String)> {
        let created_at_ms = now_ms();
        let claims = AclClaims {
            jti: crate::random_hex(16),
            iat: created_at_ms / 1000,
        };
        let token = encode(&Header::default(), &claims, &self.keys.0)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))?;
        let row = AclToken {
            id: claims.jti.clone(),
            acl_id: acl_id.to_string(),
            created_at_ms,
        };
        let (inserted, owner, ver) = (row.clone(), user.id.0.clone(), user.auth_version);
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let acl =
                        sqlx::query("SELECT 1 AS found FROM acls WHERE id = $1 AND user_id = $2")
                            .bind(&inserted.acl_id)
                            .bind(&owner)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if acl.is_none() {
                        return Err(no_such_acl());
                    }
                    let live: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM acl_tokens WHERE acl_id = $1 \
                         AND auth_version = $2",
                    )
                    .bind(&inserted.acl_id)
                    .bind(ver)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("n")?;
                    if live >= MAX_TOKENS {
                        return Err(Error::TooMany(format!(
                            "an ACL may have {MAX_TOKENS} live tokens; revoke one first"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO acl_tokens (id, acl_id, user_id, auth_version, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&inserted.id)
                    .bind(&inserted.acl_id)
                    .bind(&owner)
                    .bind(ver)
                    .bind(inserted.created_at_ms)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok((row, token))
    }

    /// Revokes one token of one of the account's ACLs, at once everywhere.
    pub async fn revoke(&self, user: &User, acl_id: &str, token_id: &str) -> Result<()> {
        let (acl, token, owner) = (acl_id.to_string(), token_id.to_string(), user.id.0.clone());
        let deleted = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "DELETE FROM acl_tokens WHERE id = $1 AND acl_id = $2 AND user_id = $3",
                    )
                    .bind(&token)
                    .bind(&acl)
                    .bind(&owner)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected())
                })
            })
            .await?;
        if deleted == 0 {
            return Err(Error::NotFound("no such token of this ACL".into()));
        }
        self.bus
            .publish_confirmed(
                Topic::Account(user.id.0.clone()),
                EventKind::TokenRevoked {
                    jti: token_id.to_string(),
                },
            )
            .await
    }

    /// The account, version and grant of an ACL token this server signed that
    /// still works; `Unauthenticated` otherwise. Whether the account and version
    /// are current is `Accounts::authenticate`'s call.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>> {
        use std::sync::atomic::Ordering;
        let claims = decode::<AclClaims>(token, &self.keys.1, &self.keys.2)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated)?;
        let verified = match self.grants.get(&claims.jti) {
            Some(verified) => verified,
            None => {
                let before = self.generation.load(Ordering::SeqCst);
                let verified = self.read_grant(&claims.jti).await?;
                if self.generation.load(Ordering::SeqCst) == before {
                    self.grants.insert(claims.jti.clone(), verified.clone());
                }
                verified
            }
        };
        verified.ok_or(Error::Unauthenticated)
    }

    async fn read_grant(&self, token_id: &str) -> Result<Option<Arc<Verified>>> {
        let row = sqlx::query(
            "SELECT t.user_id, t.auth_version, a.id AS acl_id, a.endpoints FROM acl_tokens t \
             JOIN acls a ON a.id = t.acl_id WHERE t.id = $1",
        )
        .bind(token_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let endpoints = stored_endpoints(&row.try_get::<String, _>("endpoints")?)
            .iter()
            .filter_map(|text| Endpoint::parse(text).ok())
            .collect();
        Ok(Some(Arc::new(Verified {
            user_id: row.try_get("user_id")?,
            auth_version: row.try_get("auth_version")?,
            grant: Arc::new(Grant {
                acl_id: row.try_get("acl_id")?,
                token_id: token_id.to_string(),
                endpoints,
            }),
        })))
    }

    async fn changed(&self, user: &User, acl_id: &str) -> Result<()> {
        self.bus
            .publish_confirmed(
                Topic::Account(user.id.0.clone()),
                EventKind::AclChanged {
                    acl_id: acl_id.to_string(),
                },
            )
            .await
    }
}

fn no_such_acl() -> Error {
    Error::NotFound("no such ACL".into())
}

fn acl_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "name",
            format!("the name is 1 to {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_string())
}

/// The patterns as stored: each validated and written canonically, each once.
fn endpoint_list(endpoints: &[String]) -> Result<Vec<String>> {
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(Error::invalid(
            "allowed_endpoints",
            format!("an ACL lists at most {MAX_ENDPOINTS} patterns"),
        ));
    }
    let mut list: Vec<String> = Vec::with_capacity(endpoints.len());
    for text in endpoints {
        let canonical = Endpoint::parse(text)?.to_string();
        if !list.contains(&canonical) {
            list.push(canonical);
        }
    }
    Ok(list)
}

fn stored_endpoints(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        let e = Endpoint::parse("GET /api/v1/payments/*").unwrap();
        assert!(e.matches("GET", "/api/v1/payments/abc"));
        assert!(!e.matches("GET", "/api/v1/payments"));
        assert!(!e.matches("GET", "/api/v1/payments/"));
        assert!(!e.matches("GET", "/api/v1/payments/abc/def"));
        assert!(!e.matches("POST", "/api/v1/payments/abc"));
        let exact = Endpoint::parse("get /rest/v1/balance").unwrap();
        assert_eq!(exact.to_string(), "GET /rest/v1/balance");
        assert!(exact.matches("GET", "/rest/v1/balance"));
        assert!(!exact.matches("GET", "/rest/v1/balance/"));
        assert!(!exact.matches("GET", "/rest/v1/Balance"));
        assert!(!exact.matches("GET", "/rest/v1"));
        let desk = Endpoint::parse("GET /lnm").unwrap();
        assert!(desk.matches("GET", "/lnm"));
        assert!(!desk.matches("GET", "/lnm/user"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "GET",
            "GET api/v1",
            "FETCH /api",
            "GET /api//x",
            "GET /api/",
            "GET /api/v*",
            "GET /api?x=1",
            "GET /api/../auth",
            "GET  /api",
            "GET /a b",
            "GET /",
            "GET /history",
            "GET /lnmx/user",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
