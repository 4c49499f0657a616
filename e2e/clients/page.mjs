// Opens a web page in headless Chromium for the Go end-to-end tests and
// prints what the page's own script reports: the page sets
// window.__result (any JSON value) when it is done.
//
//   node page.mjs <page-url> <options-json>
//
// Options: chromium (the browser binary), screenshot (where to write a
// screenshot when done).
//
// It prints one JSON object on stdout: {ok, error, result}.

import puppeteer from 'puppeteer-core';

const [pageURL, optionsJSON] = process.argv.slice(2);
const options = JSON.parse(optionsJSON || '{}');
const out = { ok: false, error: '', result: null };

let browser;
try {
  browser = await puppeteer.launch({
    executablePath: options.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  const page = await browser.newPage();
  await page.goto(pageURL, { waitUntil: 'load', timeout: 60000 });
  await page.waitForFunction(() => window.__result !== undefined, { timeout: 60000 });
  out.result = await page.evaluate(() => window.__result);
  if (options.screenshot) await page.screenshot({ path: options.screenshot });
  out.ok = true;
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser?.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
