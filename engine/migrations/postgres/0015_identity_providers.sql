-- Sign-in through identity providers: an account at Google, Keycloak (OpenID
-- Connect) or GitHub (OAuth 2.0) is one more kind of key an account signs in
-- with, stored as `<provider>:<the provider's subject>`.
ALTER TABLE linking_keys DROP CONSTRAINT linking_keys_kind_check;
ALTER TABLE linking_keys ADD CONSTRAINT linking_keys_kind_check
    CHECK (kind IN ('lnurl', 'joule', 'nostr', 'google', 'keycloak', 'github'));
