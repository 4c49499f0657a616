// Drives the AI SDK's MCP client (@ai-sdk/mcp, its own OAuth code, not the
// MCP SDK's) through the OAuth flow for the Go end-to-end tests, without a
// browser: the provider's redirectToAuthorization GETs the authorization
// URL, which the fake Descope approves at once, and keeps the code from the
// redirect; the driver then completes the exchange with auth() and
// connects again, as an application does after its callback.
//
//   node aisdk.mjs <mcp-url> <options-json>
//
// Options:
//   discovery  false to skip the server/discover probe (protocol 2025-11-25
//              with initialize); default true (2026-07-28 first)
//   tools      [{name, args}] the tools to call, in order, after connecting
//
// It prints one JSON object on stdout:
//   {ok, step, error, calls: [{name, text, isError, error}], authorizations}
// where a call the client could not make has error set (the driver goes on
// with the next), and authorizations are the authorization URLs' scope,
// resource and PKCE method.

import { randomBytes } from 'node:crypto';
import { auth, createMCPClient, UnauthorizedError } from '@ai-sdk/mcp';

const [mcpURL, optionsJSON] = process.argv.slice(2);
const options = JSON.parse(optionsJSON || '{}');
const redirectURI = 'http://127.0.0.1:8085/oauth/callback';

const out = { ok: false, step: 'start', error: '', calls: [], authorizations: [] };

// HeadlessProvider keeps everything in memory and does the browser's part.
class HeadlessProvider {
  constructor() {
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.code = undefined;
    this.iss = undefined;
  }
  get redirectUrl() {
    return redirectURI;
  }
  get clientMetadata() {
    return {
      client_name: 'e2e-ai-sdk',
      redirect_uris: [redirectURI],
      grant_types: ['authorization_code', 'refresh_token'],
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
  isClientInformationDynamicallyRegistered() {
    return this._client !== undefined;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    return this._verifier;
  }
  async redirectToAuthorization(authorizationURL) {
    const u = new URL(authorizationURL);
    out.authorizations.push({
      scope: u.searchParams.get('scope') ?? '',
      resource: u.searchParams.get('resource') ?? '',
      codeChallengeMethod: u.searchParams.get('code_challenge_method') ?? '',
    });
    const res = await fetch(authorizationURL, { redirect: 'manual' });
    if (res.status !== 302) {
      throw new Error(`authorization endpoint answered ${res.status}, want 302: ${await res.text()}`);
    }
    const q = new URL(res.headers.get('location')).searchParams;
    if (q.get('error')) {
      throw new Error(`authorization endpoint refused: ${q.get('error')}: ${q.get('error_description')}`);
    }
    if (q.get('state') !== this._state) {
      throw new Error('authorization endpoint returned another state');
    }
    this.code = q.get('code');
    this.iss = q.get('iss') ?? undefined;
  }
}

const provider = new HeadlessProvider();
let client;

function connect() {
  return createMCPClient({
    transport: { type: 'http', url: mcpURL, authProvider: provider },
    protocolVersionDiscovery: options.discovery !== false,
  });
}

try {
  out.step = 'connect';
  try {
    client = await connect();
  } catch (e) {
    if (!(e instanceof UnauthorizedError) && !provider.code) {
      throw e;
    }
    if (!provider.code) {
      throw new Error(`the client stopped for authorization without visiting the authorization endpoint: ${e}`);
    }
    out.step = 'auth() with the code (token exchange)';
    const result = await auth(provider, {
      serverUrl: mcpURL,
      authorizationCode: provider.code,
      callbackState: provider._state,
      callbackIssuer: provider.iss,
    });
    if (result !== 'AUTHORIZED') {
      throw new Error(`auth() with the code returned ${result}, want AUTHORIZED`);
    }
    provider.code = undefined;
    out.step = 'reconnect';
    client = await connect();
  }
  for (const tool of options.tools || [{ name: 'whoami' }]) {
    out.step = `tools/call ${tool.name}`;
    try {
      const res = await client.callTool({ name: tool.name, arguments: tool.args || {} });
      const text = res.content?.[0]?.text ?? JSON.stringify(res.content);
      out.calls.push({ name: tool.name, text, isError: !!res.isError });
    } catch (e) {
      out.calls.push({ name: tool.name, error: String(e && e.message ? e.message : e) });
    }
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
