// Preloaded with --import (through NODE_OPTIONS, so that child processes
// load it too): records every HTTP request the process makes through
// undici (Node's fetch, and the undici package some clients bundle), one
// JSON line per exchange in the shape of the Go tests' journal, into the
// file E2E_TRACE names. Bodies are not seen here; bearer tokens are
// recorded as fingerprints, never in full.

import { createHash } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';

const file = process.env.E2E_TRACE;

function fingerprint(authorization) {
  const m = /^bearer\s+(.+)$/i.exec(authorization || '');
  return m ? createHash('sha256').update(m[1].trim()).digest('hex').slice(0, 8) : undefined;
}

// header reads a header from undici's flat [name, value, ...] list (or,
// in older versions, a "name: value\r\n" string).
function header(list, name) {
  if (typeof list === 'string') {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(list);
    return m ? m[1].trim() : undefined;
  }
  const values = [];
  for (let i = 0; i + 1 < (list?.length ?? 0); i += 2) {
    if (String(list[i]).toLowerCase() === name) {
      values.push(String(list[i + 1]));
    }
  }
  return values.length ? values.join(', ') : undefined;
}

const pending = new WeakMap();

function write(x) {
  appendFileSync(file, JSON.stringify(x) + '\n');
}

if (file) {
  dc.subscribe('undici:request:create', ({ request }) => {
    const url = new URL(request.path, request.origin);
    const h = request.headers;
    pending.set(request, {
      method: request.method,
      url: url.origin + url.pathname,
      rpc: header(h, 'mcp-method'),
      name: header(h, 'mcp-name'),
      scope: url.searchParams.get('scope') ?? undefined,
      resource: url.searchParams.get('resource') ?? undefined,
      protocol: header(h, 'mcp-protocol-version'),
      session: header(h, 'mcp-session-id'),
      token: fingerprint(header(h, 'authorization')),
      status: 0,
    });
  });
  dc.subscribe('undici:request:headers', ({ request, response }) => {
    const x = pending.get(request);
    if (!x) return;
    pending.delete(request);
    x.status = response.statusCode;
    const h = response.headers.map(String);
    x.challenge = header(h, 'www-authenticate');
    x.location = header(h, 'location')?.split('?')[0];
    x.newSession = header(h, 'mcp-session-id');
    write(x);
  });
  dc.subscribe('undici:request:error', ({ request, error }) => {
    const x = pending.get(request);
    if (!x) return;
    pending.delete(request);
    x.err = String(error);
    write(x);
  });
}
