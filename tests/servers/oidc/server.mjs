// A real OAuth 2.0 / OpenID Connect authorization server for Gatehouse's tests, built on
// `oidc-provider` (panva; see tests/package.json for the pinned version). It plays two parts:
//   - the users' IdP: U1, U2, ... log in here; the gateway's inbound CUSTOM_JWT authorizer
//     validates the JWTs it issues (via its discovery document / jwks_uri);
//   - the upstream authorization server of protected MCP servers: the identity service holds
//     OAuth clients registered here and runs the authorization-code (PKCE S256) and
//     client-credentials flows against it; with an RFC 8707 `resource` the access tokens are
//     JWTs (typ at+jwt) with aud = the resource, which the MCP servers validate.
//
// Run:  node server.mjs <config.json>        (or OIDC_CONFIG=<path to JSON | inline JSON>)
// Needs Node >= 22 (oidc-provider 9 uses URL.parse); tests/node_modules/.bin/node is Node 22.
//
// Config (JSON; everything but `port` optional):
//   host, port            listen address (default host 127.0.0.1)
//   issuer                default http://<host>:<port>  (no trailing slash)
//   clients[]             OAuth client metadata (client_id, client_secret, redirect_uris,
//                         grant_types, token_endpoint_auth_method, scope, skip_consent,
//                         default_resource ...)
//                         defaults: grant_types [authorization_code, refresh_token,
//                         client_credentials], response_types [code] (none without
//                         authorization_code), token_endpoint_auth_method client_secret_basic
//   accounts              {"U1": {"password": "...", "name"?, "email"?}, ...}
//   resources             {"<resource URL>": {scope?, audience?, accessTokenTTL?}}
//   allowAnyResource      true: any absolute URL is a valid resource (scope = resourceScope)
//   defaultResource       the resource when a request names none (a client's
//                         default_resource wins); default none: such access tokens are opaque
//   resourceScope         scopes every resource offers (default "mcp:read mcp:write mcp:tools mcp:admin")
//   ttl                   seconds: AccessToken, ClientCredentials, RefreshToken, IdToken,
//                         AuthorizationCode, Interaction, Session, Grant
//   rotateRefreshToken    true (default): every refresh returns a new refresh token and
//                         consumes the old one (re-use of a consumed one revokes the grant)
//   alwaysConsent         true (default): every authorization shows the consent page unless
//                         the client has skip_consent
//   pkceRequired          true (default): PKCE (S256 only) for every authorization request
//   keysFile              where to keep the signing key (created if missing) so tokens stay
//                         valid across restarts; default: a fresh key per start
//   testApiSecret         enables the test-only API below (Authorization: Bearer <secret>)
//   accessLog             true (default): one line per request, method + path only
//
// Test-only API (only with testApiSecret; never use outside tests):
//   POST   /__test/mint             {sub?, aud?, client_id?, scope?, ttl?, typ?, claims?} ->
//                                    {token}: a JWT signed with the provider's signing key
//                                    (verifiable via jwks_uri), iss = issuer
//   PUT    /__test/clients/<id>     client metadata -> register / replace a client at runtime
//   DELETE /__test/clients/<id>
//   PATCH  /__test/settings         {ttl?, rotateRefreshToken?, alwaysConsent?, resources?,
//                                    allowAnyResource?, resourceScope?, pkceRequired?,
//                                    defaultResource?} merged into the settings
//
// Interaction pages (stable ids for Playwright): see renderLogin / renderConsent.
// Logs: no tokens, codes, secrets, passwords, query strings or interaction ids.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

const require = createRequire(import.meta.url);
const PROVIDER_VERSION = require('oidc-provider/package.json').version;

function log(line) {
  process.stderr.write(`oidc: ${line}\n`);
}

// ------------------------------------------------------------------------------------------
// configuration
// ------------------------------------------------------------------------------------------

function loadConfig() {
  const source = process.argv[2] || process.env.OIDC_CONFIG;
  if (!source) {
    log('usage: node server.mjs <config.json>  (or OIDC_CONFIG=<path | JSON>)');
    process.exit(2);
  }
  const text = source.trimStart().startsWith('{') ? source : fs.readFileSync(source, 'utf8');
  return JSON.parse(text);
}

const cfg = loadConfig();
const host = cfg.host || '127.0.0.1';
const port = Number(cfg.port);
if (!Number.isInteger(port) || port <= 0) {
  log('config: "port" (a positive integer) is required');
  process.exit(2);
}
const issuer = (cfg.issuer || `http://${host}:${port}`).replace(/\/+$/, '');

const DEFAULT_TTL = {
  AccessToken: 300,
  ClientCredentials: 300,
  RefreshToken: 24 * 60 * 60,
  IdToken: 300,
  AuthorizationCode: 60,
  Interaction: 10 * 60,
  Session: 60 * 60,
  Grant: 24 * 60 * 60,
};

// Mutable at runtime through PATCH /__test/settings.
const settings = {
  ttl: { ...DEFAULT_TTL, ...(cfg.ttl || {}) },
  rotateRefreshToken: cfg.rotateRefreshToken !== false,
  alwaysConsent: cfg.alwaysConsent !== false,
  pkceRequired: cfg.pkceRequired !== false,
  resources: { ...(cfg.resources || {}) },
  allowAnyResource: cfg.allowAnyResource !== false,
  resourceScope: cfg.resourceScope || 'mcp:read mcp:write mcp:tools mcp:admin',
  defaultResource: cfg.defaultResource || undefined,
};

const accounts = new Map(Object.entries(cfg.accounts || {}));
const testApiSecret = cfg.testApiSecret || process.env.OIDC_TEST_API_SECRET || '';
const accessLog = cfg.accessLog !== false;

function ttl(name) {
  const value = Number(settings.ttl[name]);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`ttl.${name} must be a positive integer (seconds)`);
  }
  return value;
}

// ------------------------------------------------------------------------------------------
// signing key (RS256), optionally persisted so tokens survive a restart
// ------------------------------------------------------------------------------------------

function newSigningJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumb = crypto
    .createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { ...jwk, kid: thumb.slice(0, 16), alg: 'RS256', use: 'sig' };
}

function loadSigningJwk() {
  if (cfg.keysFile && fs.existsSync(cfg.keysFile)) {
    return JSON.parse(fs.readFileSync(cfg.keysFile, 'utf8')).keys[0];
  }
  const jwk = newSigningJwk();
  if (cfg.keysFile) {
    fs.writeFileSync(cfg.keysFile, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  }
  return jwk;
}

const signingJwk = loadSigningJwk();
const signingKey = crypto.createPrivateKey({ key: signingJwk, format: 'jwk' });

function signJwt(header, payload) {
  const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const signature = crypto.sign('sha256', Buffer.from(input), signingKey).toString('base64url');
  return `${input}.${signature}`;
}

// ------------------------------------------------------------------------------------------
// storage: an unbounded in-memory adapter (the built-in one is an LRU of 1000 entries and
// announces itself as development-only); clients live here too so tests can add them later
// ------------------------------------------------------------------------------------------

const store = new Map(); // key -> {payload, expiresAt}
const grantIndex = new Map(); // grantId -> Set(key)
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = expiresIn ? Date.now() + (expiresIn + 15) * 1000 : undefined;
    store.set(key, { payload, expiresAt });
    if (this.model === 'Session' && payload.uid) {
      store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    }
    if (payload.userCode) {
      store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
    }
    if (GRANTABLE.has(this.model) && payload.grantId) {
      if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
      grantIndex.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantIndex.get(grantId) || []) store.delete(key);
    grantIndex.delete(grantId);
  }
}

// ------------------------------------------------------------------------------------------
// the provider
// ------------------------------------------------------------------------------------------

function clientMetadata(raw) {
  const metadata = { ...raw };
  metadata.grant_types ||= ['authorization_code', 'refresh_token', 'client_credentials'];
  if (!metadata.response_types) {
    metadata.response_types = metadata.grant_types.includes('authorization_code') ? ['code'] : [];
  }
  if (!metadata.response_types.length && !metadata.redirect_uris) {
    metadata.redirect_uris = [];
  }
  metadata.token_endpoint_auth_method ||= 'client_secret_basic';
  return metadata;
}

function skipConsent(client) {
  return client?.skip_consent === true;
}

function interactions() {
  const policy = interactionPolicy.base();
  // Ask for consent on every authorization (each browser context is a new session anyway),
  // so "deny" can always be exercised; clients with skip_consent never see the page.
  policy.get('consent').checks.add(
    new interactionPolicy.Check(
      'gatehouse_consent_required',
      'the end-user has not approved this authorization yet',
      (ctx) =>
        settings.alwaysConsent && !skipConsent(ctx.oidc.client) && !ctx.oidc.result?.consent
          ? interactionPolicy.Check.REQUEST_PROMPT
          : interactionPolicy.Check.NO_NEED_TO_PROMPT,
    ),
  );
  return { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` };
}

async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!skipConsent(oidc.client)) return grant;
  // first-party client: grant whatever was asked for, no consent page
  grant ||= new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
  if (oidc.requestParamOIDCScopes.size) grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
  for (const [indicator, rs] of Object.entries(oidc.resourceServers)) {
    const scopes = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await grant.save();
  return grant;
}

function findResource(indicator) {
  if (Object.hasOwn(settings.resources, indicator)) return settings.resources[indicator] || {};
  return settings.allowAnyResource ? {} : undefined;
}

const configuration = {
  adapter: MemoryAdapter,
  clients: [],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  findAccount: async (ctx, sub) => {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: account.name || sub,
          preferred_username: sub,
          email: account.email || `${sub.toLowerCase()}@example.test`,
          email_verified: true,
        };
      },
    };
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  extraClientMetadata: {
    properties: ['skip_consent', 'default_resource'],
    validator(ctx, key, value) {
      if (key === 'skip_consent' && value !== undefined && typeof value !== 'boolean') {
        throw new errors.InvalidClientMetadata('skip_consent must be a boolean');
      }
      if (key === 'default_resource' && value !== undefined && !URL.canParse(String(value))) {
        throw new errors.InvalidClientMetadata('default_resource must be an absolute URL');
      }
    },
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true, allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId },
    rpInitiatedLogout: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // No `resource` in the request: the client's default_resource (metadata), else the
      // config's defaultResource, else none (then access tokens are opaque, userinfo only).
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        return client?.default_resource || settings.defaultResource || undefined;
      },
      // At the token endpoint (code / refresh) without `resource`, use the one granted at the
      // authorization endpoint (the default would give an opaque userinfo token when `openid`
      // is among the scopes).
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        const resource = findResource(indicator);
        if (!resource) throw new errors.InvalidTarget();
        const info = {
          scope: resource.scope ?? settings.resourceScope,
          audience: resource.audience ?? indicator,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
        if (resource.accessTokenTTL) info.accessTokenTTL = resource.accessTokenTTL;
        return info;
      },
    },
  },
  responseTypes: ['code'],
  pkce: { required: () => settings.pkceRequired },
  clientBasedCORS: () => false,
  interactions: interactions(),
  loadExistingGrant,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: () => settings.rotateRefreshToken,
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || ttl('AccessToken'),
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || ttl('ClientCredentials'),
    RefreshToken: () => ttl('RefreshToken'),
    IdToken: () => ttl('IdToken'),
    AuthorizationCode: () => ttl('AuthorizationCode'),
    Interaction: () => ttl('Interaction'),
    Session: () => ttl('Session'),
    Grant: () => ttl('Grant'),
    DeviceCode: () => 600,
    BackchannelAuthenticationRequest: () => 600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page(
      'error',
      'Error',
      `<h1 id="page-title">Something went wrong</h1>
      <p id="error">${esc(out.error)}</p>
      <p id="error-description">${esc(out.error_description || '')}</p>`,
    );
  },
};

const provider = new Provider(issuer, configuration);

async function putClient(raw) {
  const metadata = clientMetadata(raw);
  if (!metadata.client_id) throw new errors.InvalidClientMetadata('client_id is required');
  await provider.Client.validate(metadata);
  await new MemoryAdapter('Client').upsert(metadata.client_id, metadata);
  return metadata.client_id;
}

for (const client of cfg.clients || []) {
  await putClient(client);
}

// Quiet, secret-free diagnostics: error names and descriptions only.
for (const event of [
  'authorization.error',
  'grant.error',
  'introspection.error',
  'revocation.error',
  'userinfo.error',
  'jwks.error',
  'discovery.error',
  'backchannel.error',
]) {
  provider.on(event, (ctx, err) => {
    // error_detail / cause are fixed strings such as "refresh token already used"
    const detail = err.error_detail || err.cause?.message;
    log(`${event}: ${err.error || err.name}: ${err.error_description || err.message}${detail ? ` (${detail})` : ''}`);
  });
}
provider.on('server_error', (ctx, err) => log(`server_error: ${err.stack || err}`));
provider.on('grant.revoked', () => log('grant revoked'));

// ------------------------------------------------------------------------------------------
// interaction pages (login + consent)
// ------------------------------------------------------------------------------------------

function esc(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(kind, title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)} - Gatehouse test IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body data-page="${esc(kind)}">
${body}
</body>
</html>
`;
}

// Login page: body[data-page=login]; form#login-form (POST .../login) with input#username
// (name=username), input#password (name=password), button#submit; p#login-error after a failed
// attempt; form#cancel-form with button#cancel (= deny).
function renderLogin(uid, details, error) {
  const hint = details.params.login_hint || '';
  return page(
    'login',
    'Sign in',
    `<h1 id="page-title">Sign in</h1>
<p>to continue to <span id="client-id">${esc(details.params.client_id)}</span></p>
${error ? `<p id="login-error" role="alert">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" value="${esc(hint)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button id="submit" name="submit" type="submit">Sign in</button>
</form>
<form id="cancel-form" method="post" action="/interaction/${esc(uid)}/abort">
  <button id="cancel" type="submit">Cancel</button>
</form>`,
  );
}

// Consent page: body[data-page=consent]; span#account (who is logged in), span#client-id,
// ul#scopes > li.scope, ul#resources > li.resource; form#consent-form (POST .../confirm) with
// button#approve (name=decision value=approve); form#deny-form (POST .../abort) with
// button#deny (name=decision value=deny).
function renderConsent(uid, details) {
  const { params, prompt, session } = details;
  const scopes = String(params.scope || '').split(' ').filter(Boolean);
  const resources = [params.resource || []].flat();
  return page(
    'consent',
    'Authorize',
    `<h1 id="page-title">Authorize access</h1>
<p><span id="account">${esc(session?.accountId)}</span>, allow
<span id="client-id">${esc(params.client_id)}</span> to access your account?</p>
<ul id="scopes">${scopes.map((s) => `<li class="scope">${esc(s)}</li>`).join('')}</ul>
<ul id="resources">${resources.map((r) => `<li class="resource">${esc(r)}</li>`).join('')}</ul>
<p id="prompt-reasons">${esc(prompt.reasons.join(' '))}</p>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
  <button id="approve" name="decision" value="approve" type="submit" autofocus>Allow</button>
</form>
<form id="deny-form" method="post" action="/interaction/${esc(uid)}/abort">
  <button id="deny" name="decision" value="deny" type="submit">Deny</button>
</form>`,
  );
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body, type = 'text/html; charset=utf-8', headers = {}) {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function passwordOk(account, password) {
  const want = Buffer.from(String(account.password ?? ''));
  const got = Buffer.from(String(password ?? ''));
  return want.length > 0 && want.length === got.length && crypto.timingSafeEqual(want, got);
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    // expired, unknown, or the interaction cookie is missing (another browser)
    send(
      res,
      400,
      page('error', 'Error', `<h1 id="page-title">Session expired</h1><p id="error">${esc(err.error || err.name)}</p>`),
    );
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, page('error', 'Error', '<h1 id="page-title">Wrong interaction</h1><p id="error">invalid_request</p>'));
    return;
  }
  const promptName = details.prompt.name;

  if (req.method === 'GET' && !action) {
    const body = promptName === 'login' ? renderLogin(uid, details) : renderConsent(uid, details);
    send(res, 200, body);
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('error', 'Error', '<p id="error">method not allowed</p>'));
    return;
  }
  const form = new URLSearchParams(await readBody(req));

  if (action === 'abort') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    log('interaction: denied');
    return;
  }

  if (action === 'login' && promptName === 'login') {
    const username = form.get('username') || '';
    const account = accounts.get(username);
    if (!account || !passwordOk(account, form.get('password'))) {
      log('interaction: login failed');
      send(res, 200, renderLogin(uid, details, 'Invalid username or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    log(`interaction: login ok (${username})`);
    return;
  }

  if (action === 'confirm' && promptName === 'consent') {
    const {
      prompt: { details: missing },
      params,
      session: { accountId },
    } = details;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    grant ||= new provider.Grant({ accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    log(`interaction: consent given (${accountId})`);
    return;
  }

  send(res, 400, page('error', 'Error', `<p id="error">unexpected ${esc(action)} for prompt ${esc(promptName)}</p>`));
}

// ------------------------------------------------------------------------------------------
// test-only API
// ------------------------------------------------------------------------------------------

function testApiAuthorized(req) {
  if (!testApiSecret) return false;
  const want = Buffer.from(`Bearer ${testApiSecret}`);
  const got = Buffer.from(req.headers.authorization || '');
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}

function json(res, status, value) {
  send(res, status, JSON.stringify(value), 'application/json');
}

async function handleTestApi(req, res, path) {
  if (!testApiSecret) {
    json(res, 404, { error: 'not_found' });
    return;
  }
  if (!testApiAuthorized(req)) {
    json(res, 401, { error: 'unauthorized' });
    return;
  }
  const text = req.method === 'GET' || req.method === 'DELETE' ? '' : await readBody(req);
  const body = text ? JSON.parse(text) : {};

  if (path === '/__test/mint' && req.method === 'POST') {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = Number(body.ttl ?? ttl('AccessToken'));
    const payload = {
      iss: issuer,
      iat: now,
      exp: now + lifetime,
      jti: crypto.randomBytes(16).toString('base64url'),
      ...(body.sub !== undefined ? { sub: body.sub } : {}),
      ...(body.aud !== undefined ? { aud: body.aud } : {}),
      ...(body.client_id !== undefined ? { client_id: body.client_id } : {}),
      ...(body.scope !== undefined ? { scope: body.scope } : {}),
      ...(body.claims || {}),
    };
    const header = { alg: 'RS256', typ: body.typ || 'at+jwt', kid: signingJwk.kid };
    json(res, 200, { token: signJwt(header, payload) });
    return;
  }
  const clientMatch = path.match(/^\/__test\/clients\/([^/]+)$/);
  if (clientMatch && req.method === 'PUT') {
    const clientId = decodeURIComponent(clientMatch[1]);
    try {
      await putClient({ ...body, client_id: clientId });
    } catch (err) {
      json(res, 400, { error: err.error || 'invalid_client_metadata', error_description: err.error_description || err.message });
      return;
    }
    log(`test api: client ${clientId} registered`);
    json(res, 200, { client_id: clientId });
    return;
  }
  if (clientMatch && req.method === 'DELETE') {
    await new MemoryAdapter('Client').destroy(decodeURIComponent(clientMatch[1]));
    json(res, 200, {});
    return;
  }
  if (path === '/__test/settings' && req.method === 'PATCH') {
    if (body.ttl) Object.assign(settings.ttl, body.ttl);
    if (body.resources) Object.assign(settings.resources, body.resources);
    for (const key of ['rotateRefreshToken', 'alwaysConsent', 'allowAnyResource', 'resourceScope', 'pkceRequired', 'defaultResource']) {
      if (body[key] !== undefined) settings[key] = body[key];
    }
    log('test api: settings updated');
    json(res, 200, { ttl: settings.ttl, rotateRefreshToken: settings.rotateRefreshToken, alwaysConsent: settings.alwaysConsent });
    return;
  }
  json(res, 404, { error: 'not_found' });
}

// ------------------------------------------------------------------------------------------
// HTTP server
// ------------------------------------------------------------------------------------------

const providerCallback = provider.callback();

function redactedPath(url) {
  const path = url.split('?')[0];
  return path.replace(/^\/(interaction|auth)\/[^/]+/, '/$1/:uid');
}

const server = http.createServer(async (req, res) => {
  const started = Date.now();
  if (accessLog) {
    res.on('finish', () => log(`${req.method} ${redactedPath(req.url)} ${res.statusCode} ${Date.now() - started}ms`));
  }
  const path = req.url.split('?')[0];
  try {
    const interaction = path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?\/?$/);
    if (interaction) {
      await handleInteraction(req, res, interaction[1], interaction[2]);
      return;
    }
    if (path.startsWith('/__test/')) {
      await handleTestApi(req, res, path);
      return;
    }
    providerCallback(req, res);
  } catch (err) {
    log(`handler error: ${err.name}: ${err.message}`);
    if (!res.headersSent) send(res, 500, page('error', 'Error', '<p id="error">server_error</p>'));
    else res.end();
  }
});

server.on('error', (err) => {
  log(`listen error: ${err.message}`);
  process.exit(1);
});

server.listen(port, host, () => {
  log(
    `oidc-provider ${PROVIDER_VERSION} on node ${process.version}: issuer ${issuer}; ` +
      `clients [${(cfg.clients || []).map((c) => c.client_id).join(', ')}]; ` +
      `accounts [${[...accounts.keys()].join(', ')}]; test api ${testApiSecret ? 'on' : 'off'}`,
  );
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
