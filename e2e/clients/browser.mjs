#!/usr/bin/env node
// The browser the tests give mcp-remote (as BROWSER; xdg-open runs it with
// the URL): it GETs the authorization URL, which the fake Descope approves
// at once, and follows the redirects to the client's loopback callback one
// hop at a time, so that the trace shows the authorization request.
//
// mcp-remote 0.15.1 can open the browser, on a step-up, before its
// callback server listens; a connection refused there is retried for a few
// seconds, as a person would reload the page.

let url = process.argv[2];
for (let hop = 0; hop < 5; hop++) {
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(url, { redirect: 'manual' });
      break;
    } catch (e) {
      if (attempt >= 50 || e?.cause?.code !== 'ECONNREFUSED') {
        throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const next = res.headers.get('location');
  if (res.status < 300 || res.status >= 400 || !next) {
    process.exitCode = res.ok ? 0 : 1;
    break;
  }
  url = new URL(next, url).toString();
}
