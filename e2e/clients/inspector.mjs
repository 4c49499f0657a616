// Drives the MCP Inspector's web UI in headless Chromium for the Go
// end-to-end tests: connects to the server the Inspector was started with
// (the OAuth flow runs on its own: the page goes to the authorization
// endpoint, which the fake Descope approves at once, and back to the
// Inspector's callback), then runs tools from the Tools tab.
//
//   node inspector.mjs <inspector-url> <options-json>
//
// Options:
//   chromium    the browser binary
//   screenshot  where to write a screenshot of the last tool result (also
//               written when a step fails)
//   tools       [{name, text}] the tools to run, in order; text fills the
//               tool's one string argument. A tool whose run opens the
//               Inspector's step-up dialog is authorized there and run once
//               more, as a person would.
//
// It prints one JSON object on stdout:
//   {ok, step, error, protocol, calls: [{name, text, isError}], stepUps,
//    authorizations: [{scope, resource, codeChallengeMethod, status}]}
// where protocol is the version the Inspector shows after connecting,
// calls are the tool results as the page shows them, and authorizations
// are the authorization requests the page made.

import puppeteer from 'puppeteer-core';

const [inspectorURL, optionsJSON] = process.argv.slice(2);
const options = JSON.parse(optionsJSON || '{}');

const out = { ok: false, step: 'start', error: '', protocol: '', calls: [], stepUps: 0, authorizations: [] };

const button = (text) => `::-p-xpath(//button[normalize-space()="${text}"])`;
const tab = (text) => `::-p-xpath(//label[.//*[normalize-space(text())="${text}"]])`;

let browser;
let page;

async function click(selector, timeout = 30000) {
  await clickFresh(selector, { timeout, visible: true });
}

// clickFresh finds selector and clicks it, finding it again when the page
// re-rendered it in between (the element found is then detached).
async function clickFresh(selector, options) {
  for (let attempt = 1; ; attempt++) {
    const el = await page.waitForSelector(selector, options);
    try {
      await el.click();
      return;
    } catch (e) {
      if (attempt >= 5 || !/detached/i.test(String(e))) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

// resultText waits for the Results pane to show a tool result other than
// before, and returns it.
async function resultText(before) {
  return poll(
    (prev) => {
      const pane = [...document.querySelectorAll('*')].find((e) => e.childElementCount > 0 && e.firstElementChild?.textContent?.trim() === 'Results');
      const text = pane?.innerText ?? '';
      const body = text.replace(/^Results\s*/, '').replace(/^(\d+\s*)+/, '').trim();
      const result = body.replace(/\s*⎘\s*$/, '');
      return result && result !== prev ? result : false;
    },
    before,
    30000,
  );
}

// connected waits for the server card to show the negotiated protocol
// version, and returns it.
async function connected() {
  return poll(() => /\bMCP\s+(\d{4}-\d\d-\d\d)\b/.exec(document.body.innerText)?.[1] ?? false, undefined, 60000);
}

// poll evaluates fn in the page until it returns something truthy, and
// returns that. Unlike page.waitForFunction it survives the page's
// navigations to the authorization endpoint and back.
async function poll(fn, arg, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const v = await Promise.race([
        page.evaluate(fn, arg),
        new Promise((resolve) => setTimeout(resolve, 5000, false)),
      ]);
      if (v) return v;
    } catch {
      // the page is between documents
    }
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeout}ms for the page`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function runTool(tool, before) {
  out.step = `open tool ${tool.name}`;
  // The tab can re-render while the tool list loads; click it until the
  // tool shows.
  for (let attempt = 0; ; attempt++) {
    await click(tab('Tools'));
    try {
      await click(button(tool.name), 500);
      break;
    } catch (e) {
      if (attempt >= 30) throw e;
    }
  }
  if (tool.text !== undefined) {
    out.step = `fill in ${tool.name}`;
    const input = await page.waitForSelector('input[aria-keyshortcuts="Enter"]', { visible: true });
    await input.click({ clickCount: 3 });
    await input.type(tool.text);
  }
  out.step = `tools/call ${tool.name}`;
  await click(button('Execute Tool'));
  // Either a result, or the step-up dialog.
  const first = await Promise.race([
    resultText(before).then((text) => ({ text })),
    page.waitForSelector('::-p-text(Additional permissions required)', { timeout: 30000 }).then(() => ({ stepUp: true })),
  ]);
  if (first.stepUp) {
    out.step = `step-up for ${tool.name}: Authorize in the dialog`;
    await click(button('Authorize'));
    // The page comes back from the authorization endpoint either on the
    // Servers tab, showing the connection, or where it was, with the
    // Inspector's notice that the step-up succeeded.
    await poll(() => /Step-up authorization succeeded|\bMCP\s+\d{4}-\d\d-\d\d\b/.test(document.body.innerText), undefined, 60000);
    out.stepUps++;
    out.step = `tools/call ${tool.name} after step-up`;
    return runTool(tool, before);
  }
  return first.text;
}

try {
  out.step = 'launch chromium';
  browser = await puppeteer.launch({
    executablePath: options.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  page.setDefaultNavigationTimeout(60000);
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.pathname.endsWith('/authorize')) {
      out.authorizations.push({
        scope: u.searchParams.get('scope') ?? '',
        resource: u.searchParams.get('resource') ?? '',
        codeChallengeMethod: u.searchParams.get('code_challenge_method') ?? '',
        redirectURI: u.searchParams.get('redirect_uri') ?? '',
      });
    }
  });

  out.step = 'open the Inspector';
  await page.goto(inspectorURL);
  out.step = 'connect (the switch), signing in';
  await clickFresh('input[type=checkbox]', {});
  out.protocol = await connected();

  let before = '';
  for (const tool of options.tools || [{ name: 'whoami' }]) {
    const text = await runTool(tool, before);
    out.calls.push({ name: tool.name, text, isError: /error/i.test(text) && !text.startsWith('{') });
    before = text;
  }
  out.ok = true;
  out.step = 'done';
} catch (e) {
  out.error = e && e.stack ? String(e.stack) : String(e);
} finally {
  if (page && options.screenshot) {
    await page.screenshot({ path: options.screenshot }).catch(() => {});
  }
  await browser?.close().catch(() => {});
}

process.stdout.write(JSON.stringify(out) + '\n');
process.exitCode = out.ok ? 0 : 1;
