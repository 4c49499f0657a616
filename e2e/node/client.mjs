// Drives the MCP TypeScript SDK client through the OAuth flow against a
// protected MCP server, without a browser, for the Go end-to-end tests.
//
//   node client.mjs <mcp-url> [options-json]
//
// Options (all optional):
//   token           an access token the client holds at the start (the
//                   server is expected to refuse it, and the client to sign
//                   in again);
//   scope           sign in first asking only for this scope, before
//                   connecting;
//   tools           the tools to call, in order, after connecting (default
//                   ["whoami"]); each is called without arguments;
//   waitMs          then wait this long and call whoami again;
//   noRefreshToken  register without the refresh_token grant, so that the
//                   authorization server issues no refresh token;
//   clientMetadataUrl  the https URL of a client ID metadata document, used
//                   as client_id where the authorization server supports
//                   them (instead of registering).
//
// When a tool call stops for a new authorization (the SDK throws
// UnauthorizedError after redirectToAuthorization, as it does on a 403
// insufficient_scope when it holds no refresh token), the driver completes
// it with finishAuth and calls the tool once more, as an application would.
//
// It prints one JSON object on stdout:
//   {ok, step, error, subs, calls, stepUps, tokens, protocolVersion,
//    sessionId, trace}
// where subs are whoami's answers, calls every tool result, stepUps how
// many tool calls needed a new authorization, tokens what the SDK saved
// (scope, and whether a refresh token came), and trace every HTTP exchange
// the SDK (and the driver) made. The exit status is 0 when ok, 1 otherwise.

import { createHash, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const REDIRECT_URI = 'http://127.0.0.1:8085/oauth/callback';

const [mcpURL, optionsJSON] = process.argv.slice(2);
const options = JSON.parse(optionsJSON || '{}');

const out = {
  ok: false,
  step: 'start',
  error: '',
  subs: [],
  calls: [],
  stepUps: 0,
  tokens: [],
  protocolVersion: '',
  sessionId: '',
  trace: [],
};

// fingerprint identifies a bearer token without showing it, as the Go side does.
function fingerprint(authorization) {
  const m = /^bearer\s+(.+)$/i.exec(authorization || '');
  return m ? createHash('sha256').update(m[1].trim()).digest('hex').slice(0, 8) : '';
}

// tracedFetch records every exchange, in the shape of the Go tests' journal.
async function tracedFetch(input, init = {}) {
  const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
  const url = input instanceof Request ? input.url : String(input);
  const x = {
    method: init.method || (input instanceof Request ? input.method : 'GET'),
    url,
    protocol: headers.get('mcp-protocol-version') || undefined,
    session: headers.get('mcp-session-id') || undefined,
    token: fingerprint(headers.get('authorization')) || undefined,
    status: 0,
  };
  const body = init.body;
  if (typeof body === 'string' || body instanceof URLSearchParams) {
    const text = String(body);
    try {
      const msg = JSON.parse(text);
      x.rpc = msg.method;
      x.name = typeof msg.params?.name === 'string' ? msg.params.name : undefined;
    } catch {
      const form = new URLSearchParams(text);
      x.grant = form.get('grant_type') || undefined;
      x.scope = form.get('scope') || undefined;
      x.resource = form.get('resource') || undefined;
    }
  }
  if (x.method === 'GET') {
    const q = new URL(url).searchParams;
    x.scope = q.get('scope') || undefined;
    x.resource = q.get('resource') || undefined;
  }
  out.trace.push(x);
  try {
    const res = await fetch(input, init);
    x.status = res.status;
    x.challenge = res.headers.get('www-authenticate') || undefined;
    x.location = res.headers.get('location') || undefined;
    x.newSession = res.headers.get('mcp-session-id') || undefined;
    if (res.status >= 300) {
      x.body = (await res.clone().text()).slice(0, 512) || undefined;
    }
    return res;
  } catch (e) {
    x.err = String(e);
    throw e;
  }
}

// HeadlessProvider keeps everything in memory and does the browser's part at
// the authorization endpoint: one GET whose redirect is not followed.
class HeadlessProvider {
  constructor(token) {
    this._tokens = token ? { access_token: token, token_type: 'Bearer' } : undefined;
    this._client = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.code = undefined;
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadataUrl() {
    return options.clientMetadataUrl || undefined;
  }
  get clientMetadata() {
    return {
      client_name: 'e2e-ts-sdk',
      redirect_uris: [REDIRECT_URI],
      grant_types: options.noRefreshToken ? ['authorization_code'] : ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    out.tokens.push({
      scope: tokens.scope || '',
      refreshToken: !!tokens.refresh_token,
      token: fingerprint(`Bearer ${tokens.access_token}`),
    });
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    return this._verifier;
  }
  async redirectToAuthorization(authorizationURL) {
    const res = await tracedFetch(authorizationURL, { redirect: 'manual' });
    if (res.status !== 302) {
      throw new Error(`authorization endpoint answered ${res.status}, want 302: ${await res.text()}`);
    }
    const location = new URL(res.headers.get('location'));
    const q = location.searchParams;
    if (q.get('error')) {
      throw new Error(`authorization endpoint refused: ${q.get('error')}: ${q.get('error_description')}`);
    }
    if (q.get('state') !== this._state) {
      throw new Error('authorization endpoint returned another state');
    }
    this.code = q.get('code');
  }
  takeCode() {
    const code = this.code;
    this.code = undefined;
    if (!code) {
      throw new Error('no authorization code was obtained');
    }
    return code;
  }
}

const provider = new HeadlessProvider(options.token);
let client;
let transport;

function newTransport() {
  return new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: tracedFetch });
}

// connect connects a new client, completing a sign-in each time the SDK
// stops for one (it throws UnauthorizedError after redirectToAuthorization).
async function connect() {
  for (let attempt = 0; ; attempt++) {
    out.step = attempt === 0 ? 'connect' : 'reconnect';
    client = new Client({ name: 'e2e-ts-sdk', version: '1.0.0' });
    transport = newTransport();
    try {
      await client.connect(transport);
      return;
    } catch (e) {
      if (!(e instanceof UnauthorizedError) || attempt >= 2) {
        throw e;
      }
      out.step = 'finishAuth (token exchange)';
      await transport.finishAuth(provider.takeCode());
      await client.close().catch(() => {});
    }
  }
}

// callTool calls a tool; when the call stops for a new authorization
// (step-up), it exchanges the code and calls the tool once more.
async function callTool(name) {
  out.step = `tools/call ${name}`;
  let res;
  try {
    res = await client.callTool({ name, arguments: {} });
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) {
      throw e;
    }
    out.step = `finishAuth (token exchange after step-up for ${name})`;
    await transport.finishAuth(provider.takeCode());
    out.stepUps++;
    out.step = `tools/call ${name} after step-up`;
    res = await client.callTool({ name, arguments: {} });
  }
  const text = res.content?.[0]?.text ?? JSON.stringify(res.content);
  out.calls.push({ name, text, isError: !!res.isError });
  if (res.isError) {
    throw new Error(`${name} failed: ${text}`);
  }
  if (name === 'whoami') {
    out.subs.push(text);
  }
}

try {
  if (options.scope) {
    out.step = `sign-in asking only for scope "${options.scope}"`;
    const first = await auth(provider, { serverUrl: mcpURL, scope: options.scope, fetchFn: tracedFetch });
    if (first !== 'REDIRECT') {
      throw new Error(`auth() returned ${first}, want REDIRECT`);
    }
    const second = await auth(provider, { serverUrl: mcpURL, authorizationCode: provider.takeCode(), fetchFn: tracedFetch });
    if (second !== 'AUTHORIZED') {
      throw new Error(`auth() with the code returned ${second}, want AUTHORIZED`);
    }
  }
  await connect();
  out.protocolVersion = transport.protocolVersion || '';
  out.sessionId = transport.sessionId || '';
  for (const name of options.tools || ['whoami']) {
    await callTool(name);
  }
  if (options.waitMs) {
    out.step = `wait ${options.waitMs}ms`;
    await new Promise((resolve) => setTimeout(resolve, options.waitMs));
    await callTool('whoami');
  }
  out.ok = true;
  out.step = 'done';
} catch (e) {
  out.error = e && e.stack ? String(e.stack) : String(e);
} finally {
  await client?.close().catch(() => {});
}

process.stdout.write(JSON.stringify(out) + '\n');
process.exitCode = out.ok ? 0 : 1;
