//! Bearer tokens: HS256 JWTs signed with a key the server makes on first start and
//! keeps in the database (so every process on one database accepts the others'
//! tokens). A token names its user and the `auth_version` it was issued under.

use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{now_ms, Database, Error, Result, User};

/// How long a token issued at login stays valid.
pub const TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub usr: String,
    /// The user's `auth_version` at issue.
    pub ver: i64,
    pub iat: i64,
    pub exp: i64,
}

/// Cheap to clone: every request handler gets a copy of the engine.
#[derive(Clone)]
pub struct Tokens(std::sync::Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    /// Loads the signing key, made on the very first start.
    pub async fn load(db: &Database) -> Result<Self> {
        let key = db.secret("jwt").await?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        Ok(Tokens(std::sync::Arc::new(Keys {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        })))
    }

    pub fn issue(&self, user: &User) -> Result<String> {
        let iat = now_ms() / 1000;
        let claims = Claims {
            sub: user.id.0.clone(),
            usr: user.username.clone(),
            ver: user.auth_version,
            iat,
            exp: iat + TOKEN_LIFETIME_SECS,
        };
        encode(&Header::default(), &claims, &self.0.encoding)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))
    }

    /// The claims of a token this server signed and that has not expired. Whether
    /// its user and version are still current is `Accounts::authenticate`'s call.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated)
    }
}
