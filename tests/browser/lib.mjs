// Shared pieces of the browser suites: Debian's Chromium through playwright-core (never
// a downloaded browser), the windows the suites run in, screenshots of each step, and
// the watch every context is under: each request must go to the server alone, each
// response from it must carry the security headers, and whatever a page logs, alerts
// or has blocked by its Content-Security-Policy is recorded.
//
// The Python side (tests/e2e/wmk_browser.py) provisions the instance and passes:
//   WMK_URL, WMK_SCENARIO (JSON), WMK_ARTIFACTS (screenshot dir), WMK_CLI, WMK_CONFIG.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

export const ORIGIN = required('WMK_URL');
export const SCENARIO = JSON.parse(fs.readFileSync(required('WMK_SCENARIO'), 'utf8'));
export const ARTIFACTS = required('WMK_ARTIFACTS');

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite through tests/e2e/test_browser_*.py`);
  return v;
}

// The flags that make Chromium quiet on a closed network: no background requests, no
// component updates, no sync (each of them would be refused here, many at a time).
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// playwright-core's launch gives each browser a new, empty user data directory.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.WEBMAILKEY_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

// The windows every flow runs in. `nojs` is the desktop window with JavaScript off:
// every flow must work without it.
export const RUNS = {
  desktop: { viewport: { width: 1280, height: 800 }, javaScriptEnabled: true },
  phone: {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    javaScriptEnabled: true,
  },
  nojs: { viewport: { width: 1280, height: 800 }, javaScriptEnabled: false },
};

// Screenshots of each step: ARTIFACTS/<run>/NN-step.png, numbered in order.
export class Shots {
  // Each step is also checked for what a screenshot shows badly: a page wider than the
  // window (sideways scrolling on a phone), a form control without a label.
  constructor(run) {
    this.run = run;
    this.dir = path.join(ARTIFACTS, run);
    fs.mkdirSync(this.dir, { recursive: true });
    this.n = 0;
  }

  async take(page, step) {
    this.n += 1;
    const file = path.join(this.dir, `${String(this.n).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    // Playwright evaluates in its own world: this works with the page's JavaScript off.
    const { wider, unlabelled, outside, small } = await page.evaluate(() => {
      const d = document.documentElement;
      const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')];
      const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label') ||
        el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
      const shown = controls.filter((el) => el.getClientRects().length > 0);
      const box = (el) => el.getBoundingClientRect();
      const name = (el) => el.outerHTML.slice(0, 120);
      // Targets a finger must hit: WCAG 2.2's minimum target size is 24 × 24 CSS px.
      const tappable = shown.filter((el) => !['checkbox', 'radio'].includes(el.type));
      return {
        wider: d.scrollWidth - d.clientWidth,
        unlabelled: controls.filter((el) => !named(el)).map(name),
        // Every control lies within the window's width: none needs sideways scrolling,
        // or sits clipped under an overflow: hidden.
        outside: shown.filter((el) => box(el).left < -0.5 || box(el).right > d.clientWidth + 0.5)
          .map((el) => `${name(el)} at ${Math.round(box(el).left)}..${Math.round(box(el).right)}`),
        small: tappable.filter((el) => box(el).height < 24 || box(el).width < 24)
          .map((el) => `${name(el)} is ${Math.round(box(el).width)}×${Math.round(box(el).height)}`),
      };
    });
    assert.ok(wider <= 0, `${this.run}/${step}: the page is ${wider}px wider than the window (${file})`);
    assert.deepEqual(unlabelled, [], `${this.run}/${step}: form controls without a label (${file})`);
    assert.deepEqual(outside, [], `${this.run}/${step}: controls beyond the window's width (${file})`);
    assert.deepEqual(small, [], `${this.run}/${step}: controls smaller than 24×24 px (${file})`);
    return file;
  }
}

// Widths of elements as fractions of the window's width: {selector: fraction}.
export async function widthShares(page, selectors) {
  return page.evaluate((sels) => {
    const w = document.documentElement.clientWidth;
    const out = {};
    for (const s of sels) {
      const el = document.querySelector(s);
      out[s] = el ? el.getBoundingClientRect().width / w : null;
    }
    return out;
  }, selectors);
}

// Headers every response of the CGI programs carries (DESIGN §6; the list).
export function checkPageHeaders(url, status, h) {
  const where = `${status} ${url}`;
  const csp = h['content-security-policy'] || '';
  assert.match(csp, /(^|;)\s*default-src 'none'/, `CSP default-src 'none' on ${where}: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/, `CSP frame-ancestors 'none' on ${where}`);
  assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|\*/, `no unsafe CSP sources on ${where}`);
  assert.match(h['strict-transport-security'] || '', /max-age=\d{7,}/, `HSTS on ${where}`);
  assert.equal(h['referrer-policy'], 'no-referrer', `Referrer-Policy on ${where}`);
  assert.equal(h['x-content-type-options'], 'nosniff', `nosniff on ${where}`);
  assert.equal(h['cache-control'], 'no-store', `Cache-Control: no-store on ${where}`);
}

// The watch over one browser context (see the top of this file).
export class Watch {
  constructor(context, label) {
    this.context = context;
    this.label = label;
    this.offsite = [];      // requests to any host but the server (aborted)
    this.requests = [];     // every request URL the browser made
    this.responses = [];    // {url, status, headers} of the server's answers
    this.console = [];      // {type, text, frame} from every frame
    this.dialogs = [];      // alert/confirm/prompt texts (dismissed)
    this.pageErrors = [];
    this.pending = [];
  }

  static async on(context, label) {
    const w = new Watch(context, label);
    await context.route('**/*', (route) => {
      const url = route.request().url();
      w.requests.push(url);
      if (url.startsWith(ORIGIN + '/')) return route.continue();
      w.offsite.push(url);
      return route.abort('blockedbyclient');
    });
    context.on('response', (resp) => {
      if (!resp.url().startsWith(ORIGIN + '/')) return;
      w.pending.push(resp.allHeaders().then(
        (headers) => w.responses.push({ url: resp.url(), status: resp.status(), headers }),
        () => {}));
    });
    context.on('page', (page) => w.attach(page));
    return w;
  }

  attach(page) {
    page.on('console', (m) => this.console.push({ type: m.type(), text: m.text(), url: m.location().url }));
    page.on('dialog', (d) => { this.dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
    page.on('pageerror', (e) => this.pageErrors.push(String(e)));
  }

  // CSP violations Chromium reported (as console errors): allowed, and listed.
  cspViolations() {
    return this.console.filter((m) => /Content Security Policy|Refused to/.test(m.text));
  }

  async settle() {
    await Promise.all(this.pending);
  }

  // Every server response so far carried the headers; nothing went anywhere else; our
  // own pages broke no rule of their own Content-Security-Policy (hostile mail may, and
  // passes allowCspViolations).
  async assertClean({ allowCspViolations = false } = {}) {
    await this.settle();
    if (!allowCspViolations) {
      assert.deepEqual(this.cspViolations().map((m) => m.text), [], `${this.label}: CSP violations`);
    }
    assert.deepEqual(this.offsite, [], `${this.label}: requests left for other hosts`);
    assert.deepEqual(this.dialogs, [], `${this.label}: dialogs were opened`);
    assert.deepEqual(this.pageErrors, [], `${this.label}: script errors`);
    assert.ok(this.responses.length > 0, `${this.label}: no responses were seen`);
    for (const r of this.responses) {
      const p = new URL(r.url).pathname;
      if (p.startsWith('/static/')) {
        assert.equal(r.headers['x-content-type-options'], 'nosniff', `nosniff on ${r.url}`);
        assert.match(r.headers['strict-transport-security'] || '', /max-age=/, `HSTS on ${r.url}`);
      } else {
        checkPageHeaders(r.url, r.status, r.headers);
      }
    }
  }
}

// A browser context for a run, under a Watch, its first page attached.
export async function openContext(browser, run, label = run) {
  const context = await browser.newContext({
    ...RUNS[run],
    ignoreHTTPSErrors: true, // the instance's certificate is self-signed
    acceptDownloads: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(15000);
  const watch = await Watch.on(context, label);
  const page = await context.newPage();
  return { context, watch, page };
}

// The page's state (<body data-page>, DESIGN §6).
export async function dataPage(page) {
  return page.locator('body').getAttribute('data-page');
}

export async function expectPage(page, name, why = '') {
  const actual = await dataPage(page);
  assert.equal(actual, name, `expected data-page=${name} ${why} at ${page.url()}, got ${actual}: ` +
    (await page.locator('main').innerText().catch(() => '?')).slice(0, 400));
}

// Clicks something that submits a form or follows a link, and waits for the new page.
export async function navigate(page, locator) {
  const committed = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await locator.click();
  await committed;
  await page.waitForLoadState('load');
}

export async function goto(page, pathAndQuery) {
  return page.goto(ORIGIN + pathAndQuery, { waitUntil: 'load' });
}

// Logs in through the form as a person would (labels, button).
export async function login(page, user, password) {
  await goto(page, '/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await navigate(page, page.getByRole('button', { name: 'Log in' }));
}

// The server's own view, through the admin CLI (--json).
export function cli(...args) {
  const r = spawnSync(process.env.WMK_CLI, ['--config', process.env.WMK_CONFIG, '--json', ...args],
    { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`webmailkey ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}
