// A real OpenID Connect provider on loopback for the sign-in tests: npm's
// `oidc-provider` (a certified implementation) with one client, Ampere.
//
// What a test cannot do through a browser, it asks here:
// - `POST /_test/user` (text: a subject) names who signs in next (default
//   "alice"); the login and consent screens are answered at once for them.
// - `POST /_test/mode` (text) makes the token endpoint lie as an attacker
//   would: `wrong-key` re-signs the ID token with a key the provider never
//   published (same `kid`), `wrong-audience` re-signs it, with the provider's
//   own key, for another client; `honest` (default) stops lying.
// It also answers GitHub's user endpoint (`GET /user` with the access token),
// so the GitHub (OAuth 2.0) path signs in against it too.
//
// Usage: node oidc.mjs <client_id> <client_secret> <redirect_uri>...
// Prints `issuer <url>` once listening; runs until stdin closes.

import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

const [clientId, clientSecret, ...redirectUris] = process.argv.slice(2);

const signing = await generateKeyPair('RS256', { extractable: true });
const rogue = await generateKeyPair('RS256', { extractable: true });
const providerJwk = { ...(await exportJWK(signing.privateKey)), kid: 'provider-key', alg: 'RS256', use: 'sig' };

let nextUser = 'alice';
let mode = 'honest';
const githubIds = new Map();

const claims = (sub) => ({
  sub,
  email: `${sub}@example.org`,
  email_verified: true,
  preferred_username: sub,
  name: `${sub[0].toUpperCase()}${sub.slice(1)} Example`,
});

const listener = await new Promise((resolve) => {
  import('node:http').then(({ createServer }) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
});
const issuer = `http://127.0.0.1:${listener.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [providerJwk] },
  // GitHub's paths, so one provider plays GitHub (OAuth 2.0) too.
  routes: { authorization: '/login/oauth/authorize', token: '/login/oauth/access_token' },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'read:user', 'user:email'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => claims(sub) }),
  // Like Google and Keycloak, put the scopes' claims in the ID token too.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['loopback-test-provider'] },
});

async function readText(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text.trim();
}

async function forge(idToken) {
  const payload = decodeJwt(idToken);
  const { kid } = decodeProtectedHeader(idToken);
  let key = signing.privateKey;
  if (mode === 'wrong-key') key = rogue.privateKey;
  if (mode === 'wrong-audience') payload.aud = 'another-client';
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/user' && ctx.method === 'POST') {
    nextUser = await readText(ctx.req);
    ctx.body = 'ok';
    return;
  }
  if (ctx.path === '/_test/mode' && ctx.method === 'POST') {
    mode = await readText(ctx.req);
    ctx.body = 'ok';
    return;
  }
  if (ctx.path === '/user' && ctx.method === 'GET') {
    const value = (ctx.get('authorization') || '').replace(/^Bearer /i, '');
    const token = value && await provider.AccessToken.find(value);
    if (!token) {
      ctx.status = 401;
      ctx.body = { message: 'Bad credentials' };
      return;
    }
    const sub = token.accountId;
    if (!githubIds.has(sub)) githubIds.set(sub, 1000 + githubIds.size);
    ctx.body = { id: githubIds.get(sub), login: sub, name: claims(sub).name, email: null };
    return;
  }
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId: nextUser } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    }
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
    return;
  }
  await next();
  if (ctx.path === '/login/oauth/access_token' && mode !== 'honest' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await forge(ctx.body.id_token) };
  }
});

listener.on('request', provider.callback());
process.stdout.write(`issuer ${issuer}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
