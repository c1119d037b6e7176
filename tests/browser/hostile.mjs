// Hostile mail and hostile pages, in Chromium with JavaScript on (the harder case).
//
// Mail: each message of the corpus and each beacon message is opened and must be
// harmless, checked from the page: no script ran (beacons would change the title, post
// a message to the page, log, alert or navigate), no request left for any host but the
// server, no markup from the mail outside the body frame, the frame sandboxed without
// scripts or same-origin, attachments downloads only. CSP violations Chromium reports
// are allowed and listed.
//
// Pages: another site (and another port of the same host, which is same-site) posts
// to /login, /unlock and /logout, frames the pages, and tries to fix a session id.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ORIGIN, SCENARIO, Shots, checkPageHeaders, cli, dataPage, expectPage, goto, launch,
  login, navigate, openContext,
} from './lib.mjs';

const S = SCENARIO;
const SESSION = '__Host-wmk-session';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Every message posted to the top window (a script in the mail frame could post one).
async function recordPostedMessages(context) {
  await context.addInitScript(() => {
    if (window.top !== window) return;
    window.__wmkPosted = [];
    window.addEventListener('message', (e) => window.__wmkPosted.push(String(e.data)));
  });
}

async function posted(page) {
  return page.evaluate(() => window.__wmkPosted || []);
}

// The frames of the page other than the page itself: each must be a sandboxed iframe
// without scripts, same-origin, forms or top navigation.
async function assertFramesSandboxed(page, name) {
  const frames = page.frames().filter((f) => f !== page.mainFrame());
  for (const f of frames) {
    const el = await f.frameElement();
    const tag = await el.evaluate((e) => e.tagName.toLowerCase());
    assert.equal(tag, 'iframe', `${name}: only iframes`);
    const sandbox = await el.getAttribute('sandbox');
    assert.notEqual(sandbox, null, `${name}: the frame has a sandbox attribute`);
    const tokens = sandbox.split(/\s+/).filter(Boolean);
    // Links in mail may open a new tab (popups); nothing else is allowed.
    const allowed = ['allow-popups', 'allow-popups-to-escape-sandbox'];
    for (const token of tokens) {
      assert.ok(allowed.includes(token), `${name}: sandbox grants only popups, not ${token} (${sandbox})`);
    }
    // Nothing active arrived in it.
    for (const sel of ['script', 'iframe', 'object', 'embed', 'form', 'input', 'base', 'meta[http-equiv]',
      'link:not([rel="stylesheet"][href="/static/mail.css"])', 'style', '[onload]', '[onerror]', '[onclick]', '[style]', 'img[src^="http"]', 'svg']) {
      assert.equal(await f.locator(sel).count(), 0, `${name}: no ${sel} in the mail frame`);
    }
  }
  return frames;
}

// What the page itself shows outside the mail frame: our markup only.
async function assertNoMailMarkupOutside(page, name) {
  for (const sel of ['script:not([src="/static/banner.js"])', 'img', 'object', 'embed', 'svg', 'iframe:not([sandbox])', 'style',
    'link:not([rel="stylesheet"][href="/static/style.css"]):not([rel="icon"][href="/static/favicon.svg"])', 'base', 'meta[http-equiv]',
    'form:not([action^="/"])', '[onload]', '[onerror]', '[style]']) {
    assert.equal(await page.locator(sel).count(), 0, `${name}: no ${sel} in the page outside the frame`);
  }
  for (const sel of ['dl.headers', 'h1']) {
    const inner = page.locator(`${sel} *:not(dt):not(dd):not(span)`);
    assert.equal(await inner.count(), 0, `${name}: header text is text (${sel})`);
  }
  // None of this mail has a valid signature: no indicator may say so.
  assert.equal(await page.locator('.signature-good, .badge.signed').count(), 0,
    `${name}: no valid-signature indicator`);
}

async function openAndCheck(page, watch, entry, shots, t) {
  const name = entry.name;
  const url = `/message?id=${encodeURIComponent(entry.uid)}&folder=INBOX`;
  const before = { offsite: watch.offsite.length, dialogs: watch.dialogs.length };
  await goto(page, url);
  await page.waitForTimeout(150); // a refresh of 0 s, a timer, an onload would have run
  await expectPage(page, 'message', name);
  assert.equal(page.url(), ORIGIN + url, `${name}: the page did not navigate away`);
  assert.doesNotMatch(await page.title(), /PWNED/, `${name}: title unchanged`);
  const frames = await assertFramesSandboxed(page, name);
  if (entry.framed) assert.equal(frames.length, 1, `${name}: the HTML body is in a frame`);
  await assertNoMailMarkupOutside(page, name);

  // Try what a reader would: click the links and buttons the mail shows in its frame.
  for (const f of frames) {
    for (const sel of ['#jslink', '#datalink', '#formgo', 'a[href^="javascript"]']) {
      const el = f.locator(sel);
      if (await el.count()) await el.first().click({ timeout: 2000, noWaitAfter: true }).catch(() => {});
    }
  }
  if (frames.length) await page.waitForTimeout(100);

  // Attachments: downloads, never pages.
  const hrefs = await page.locator('ul.attachments a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  for (const href of hrefs) {
    const resp = await page.context().request.get(ORIGIN + href, { maxRetries: 2 });
    const h = resp.headers();
    checkPageHeaders(href, resp.status(), h);
    assert.match(h['content-disposition'] || '', /^attachment;/, `${name}: ${href} is an attachment`);
    assert.match(h['content-security-policy'], /sandbox/, `${name}: ${href} sandboxed should it render`);
    await assert.rejects(page.goto(ORIGIN + href), /Download is starting/, `${name}: ${href} downloads`);
    const [download] = await Promise.all([
      page.waitForEvent('download'), page.locator(`ul.attachments a[href="${href}"]`).click()]);
    const file = download.suggestedFilename();
    assert.doesNotMatch(file, /[\/\\\u0000-\u001f\u202a-\u202e\u2066-\u2069]|^\./,
      `${name}: a plain file name (${JSON.stringify(file)})`);
    await download.delete();
  }
  assert.equal(page.url(), ORIGIN + url, `${name}: still on the message`);

  const msgs = await posted(page);
  assert.deepEqual(msgs, [], `${name}: messages posted by the mail`);
  assert.deepEqual(watch.offsite.slice(before.offsite), [], `${name}: requests to other hosts`);
  assert.deepEqual(watch.dialogs.slice(before.dialogs), [], `${name}: dialogs`);
  const pwned = watch.console.filter((m) => /PWNED/.test(m.text));
  assert.deepEqual(pwned, [], `${name}: console lines from the mail`);
  await shots.take(page, name.replace(/\.eml$/, ''));
  if (t && frames.length) t.diagnostic(`${name}: ${frames.length} sandboxed frame(s)`);
}

describe('hostile mail', () => {
  const shots = new Shots('mail');
  let ctx;
  before(async () => {
    ctx = await openContext(browser, 'desktop', 'hostile-mail');
    await recordPostedMessages(ctx.context);
    await login(ctx.page, S.user, S.password);
    await expectPage(ctx.page, 'inbox');
  });
  after(async () => { await ctx?.context.close(); });

  test('the inbox lists the hostile mail harmlessly', async () => {
    const { page, watch } = ctx;
    await goto(page, '/inbox?page=1');
    await assertNoMailMarkupOutside(page, 'inbox');
    assert.doesNotMatch(await page.title(), /PWNED/);
    assert.deepEqual(watch.offsite, []);
    await shots.take(page, 'inbox');
  });

  for (const entry of [...S.beacons, ...S.corpus]) {
    test(`harmless: ${entry.name}`, async (t) => {
      await openAndCheck(ctx.page, ctx.watch, entry, shots, t);
    });
  }

  test('"Show as plain text" shows the HTML mail as text, without a frame', async () => {
    const { page, watch } = ctx;
    const entry = S.beacons.find((b) => b.name === 'html-only');
    await goto(page, `/message?id=${encodeURIComponent(entry.uid)}&folder=INBOX`);
    await navigate(page, page.getByRole('link', { name: 'Show as plain text' }));
    await expectPage(page, 'message');
    assert.equal(page.frames().length, 1, 'no frame in the text view');
    assert.match(await page.locator('pre.body').innerText(), /Beacon html-only: if you can read this/);
    await assertNoMailMarkupOutside(page, 'as text');
    await page.waitForTimeout(100);
    assert.doesNotMatch(await page.title(), /PWNED/);
    assert.deepEqual(await posted(page), []);
    assert.deepEqual(watch.offsite, []);
    await shots.take(page, 'as-plain-text');
    await navigate(page, page.getByRole('link', { name: 'Show formatted' }));
    assert.equal(page.frames().length, 2, 'back to the frame');
  });

  test('hostile HTML inside encryption is framed the same way once decrypted', async () => {
    const { page, watch } = ctx;
    await goto(page, `/message?id=${encodeURIComponent(S.encrypted.uid)}&folder=INBOX`);
    await navigate(page, page.getByRole('button', { name: 'Decrypt' }));
    await expectPage(page, 'unlock');
    await page.getByLabel('Key passphrase').fill(S.key_passphrase);
    const confirm = page.getByLabel(/^Passphrase again/);
    if (await confirm.count()) await confirm.fill(S.key_passphrase);
    await navigate(page, page.getByRole('button', { name: 'OK' }));
    await expectPage(page, 'decrypted');
    await page.waitForTimeout(150);
    assert.doesNotMatch(await page.title(), /PWNED/);
    const frames = await assertFramesSandboxed(page, 'decrypted');
    await assertNoMailMarkupOutside(page, 'decrypted');
    // The indicators are drawn by the page, outside the frame.
    assert.ok(await page.locator('main .indicator').count(), 'indicators outside the frame');
    for (const f of frames) {
      assert.equal(await f.locator('.indicator').count(), 0);
    }
    assert.deepEqual(await posted(page), []);
    assert.deepEqual(watch.offsite, []);
    await shots.take(page, 'decrypted');
  });

  test('S/MIME without integrity protection (a CBC gadget) shows as text and loads nothing', async () => {
    const { page, watch } = ctx;
    await goto(page, `/message?id=${encodeURIComponent(S.cbc_gadget.uid)}&folder=INBOX`);
    await navigate(page, page.getByRole('button', { name: 'Decrypt' }));
    await expectPage(page, 'unlock');
    await page.getByLabel('Key passphrase').fill(S.key_passphrase);
    const confirm = page.getByLabel(/^Passphrase again/);
    if (await confirm.count()) await confirm.fill(S.key_passphrase);
    await navigate(page, page.getByRole('button', { name: 'OK' }));
    await expectPage(page, 'decrypted');
    await page.waitForTimeout(150);
    const segment = page.locator('section.segment[data-integrity="none"]');
    assert.equal(await segment.count(), 1, 'one segment marked data-integrity="none"');
    // The altered block and the secret are there, as text.
    const text = await segment.locator('pre.body').innerText();
    assert.match(text, /^<img src=http:\/\//, 'the gadget block shows as the literal text');
    assert.match(text, /CBC-GADGET-SECRET 7391/);
    assert.match(await segment.innerText(), /not integrity-protected|Not integrity-protected/);
    assert.match(await segment.innerText(), /may have been altered/);
    // No element of it loads or links anything; no frame at all on the page.
    for (const sel of ['img', 'a', 'iframe', 'object', 'embed', 'video', 'audio', 'link',
      'style', '[src]', '[href]', '[srcset]', '[style]', '[background]']) {
      assert.equal(await segment.locator(sel).count(), 0, `no ${sel} in the unprotected segment`);
    }
    assert.equal(page.frames().length, 1, 'no mail frame for an unprotected segment');
    assert.match(await page.locator('ul.indicators').innerText(), /NOT integrity-protected/);
    await assertNoMailMarkupOutside(page, 'cbc-gadget');
    assert.doesNotMatch(await page.title(), /PWNED/);
    assert.deepEqual(await posted(page), []);
    assert.deepEqual(watch.offsite, [], 'nothing was requested from another host');
    await shots.take(page, 'cbc-gadget');
  });

  test('nothing left for another host; every response had the headers', async (t) => {
    const { watch } = ctx;
    await watch.assertClean({ allowCspViolations: true });
    assert.deepEqual(watch.console.filter((m) => /PWNED/.test(m.text)), []);
    const csp = watch.cspViolations();
    t.diagnostic(`${watch.requests.length} requests, all to ${ORIGIN}; ` +
      `${csp.length} loads blocked by the Content-Security-Policy`);
    for (const m of csp.slice(0, 5)) t.diagnostic(`CSP: ${m.text.slice(0, 200)}`);
  });
});

// ---- hostile pages

// A page of another origin, served by the test: `site` is its origin.
async function servePage(context, site, html) {
  await context.route(`${site}/**`, (route) => route.fulfill({
    status: 200, contentType: 'text/html; charset=utf-8', body: html,
  }));
}

function postForm(action, fields) {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${String(v).replace(/"/g, '&quot;')}">`)
    .join('');
  return `<!doctype html><title>Win a prize</title><form method="post" action="${ORIGIN}${action}">${inputs}` +
    '<button id="go" type="submit">Claim your prize</button></form>';
}

// Same host, another port: same-site (cookies with SameSite=Strict are sent), not same-origin.
const SAME_SITE = `https://127.0.0.1:${Number(new URL(ORIGIN).port) === 1 ? 2 : 1}`;
const CROSS_SITE = 'https://attacker.example';

describe('hostile pages', () => {
  const shots = new Shots('pages');

  test('login form: cross-site and same-site posts are refused', async () => {
    for (const site of [CROSS_SITE, SAME_SITE]) {
      const { context, page, watch } = await openContext(browser, 'desktop', `login-csrf ${site}`);
      try {
        // The victim has seen the login form (so holds a login CSRF cookie).
        await goto(page, '/login');
        await servePage(context, site, postForm('/login', { user: S.user, password: S.password, csrf: 'guess' }));
        await page.goto(`${site}/prize`);
        const answer = page.waitForResponse((r) => r.url() === `${ORIGIN}/login`);
        await navigate(page, page.locator('#go'));
        assert.equal((await answer).status(), 403, `${site}: refused`);
        assert.ok(['login', 'error'].includes(await dataPage(page)));
        assert.equal((await context.cookies()).find((c) => c.name === SESSION), undefined,
          `${site}: no session`);
        await shots.take(page, `login-csrf-${site === CROSS_SITE ? 'cross-site' : 'same-site'}`);
        await goto(page, '/inbox');
        await expectPage(page, 'login', `${site}: not logged in`);
        await watch.assertClean();
      } finally {
        await context.close();
      }
    }
  });

  test('unlock and logout forms: posts from other sites are refused, even with the token', async (t) => {
    const { context, page, watch } = await openContext(browser, 'desktop', 'unlock-csrf');
    try {
      await login(page, S.user, S.password);
      await expectPage(page, 'inbox');
      cli('grant', 'revoke', '--login', S.user);
      // Suppose the attacker even learnt the session's CSRF token.
      const csrf = await page.locator('form[action="/logout"] input[name="csrf"]').getAttribute('value');
      const target = { id: S.encrypted.uid, folder: 'INBOX' };
      for (const site of [CROSS_SITE, SAME_SITE]) {
        await servePage(context, site, postForm('/unlock', {
          ...target, passphrase: S.key_passphrase, confirm: S.key_passphrase, csrf,
        }));
        await page.goto(`${site}/unlock`);
        const answer = page.waitForResponse((r) => r.url().startsWith(`${ORIGIN}/unlock`));
        await navigate(page, page.locator('#go'));
        const status = (await answer).status();
        // Cross-site: the Strict session cookie is not sent (→ /login); same-site: the
        // origin check refuses (403).
        assert.ok([303, 403].includes(status), `${site}: /unlock answered ${status}`);
        assert.notEqual(await dataPage(page), 'decrypted');
        assert.notEqual(await dataPage(page), 'signed');
        assert.deepEqual(cli('grant', 'list', '--login', S.user).filter((g) => g.live), [],
          `${site}: no grant`);
        await shots.take(page, `unlock-csrf-${site === CROSS_SITE ? 'cross-site' : 'same-site'}`);

        await servePage(context, site, postForm('/logout', { csrf }));
        await page.goto(`${site}/logout`);
        await navigate(page, page.locator('#go'));
        await goto(page, '/inbox');
        await expectPage(page, 'inbox', `${site}: still logged in after a forged logout`);
      }
      await watch.assertClean();
      t.diagnostic('cross-site: no cookie; same-site: refused by Origin/Sec-Fetch-Site');
    } finally {
      await context.close();
    }
  });

  test("CSRF tokens are bound to the session: another session's token is refused", async () => {
    const a = await openContext(browser, 'desktop', 'csrf-a');
    const b = await openContext(browser, 'desktop', 'csrf-b');
    try {
      await login(a.page, S.user, S.password);
      await login(b.page, S.user, S.password);
      const tokenA = await a.page.locator('form[action="/logout"] input[name="csrf"]').getAttribute('value');
      // B's own Logout form, carrying A's token (as if it had leaked).
      await b.page.locator('form[action="/logout"] input[name="csrf"]')
        .evaluate((el, v) => { el.value = v; }, tokenA);
      const answer = b.page.waitForResponse((r) => r.url() === `${ORIGIN}/logout`);
      await navigate(b.page, b.page.getByRole('button', { name: 'Log out' }));
      assert.equal((await answer).status(), 403);
      await expectPage(b.page, 'error');
      await shots.take(b.page, 'csrf-other-session');
      await goto(b.page, '/inbox');
      await expectPage(b.page, 'inbox', 'B is still logged in');
      await goto(a.page, '/inbox');
      await expectPage(a.page, 'inbox', 'A is still logged in');
      await a.watch.assertClean();
      await b.watch.assertClean();
    } finally {
      await a.context.close();
      await b.context.close();
    }
  });

  test('no page can be framed by another site', async () => {
    const { context, page } = await openContext(browser, 'desktop', 'framing');
    try {
      await servePage(context, CROSS_SITE, `<!doctype html><title>frames</title>
        <iframe id="a" src="${ORIGIN}/login"></iframe><iframe id="b" src="${ORIGIN}/inbox"></iframe>`);
      const loads = [];
      page.on('response', (r) => { if (r.url().startsWith(ORIGIN)) loads.push(r.url()); });
      await page.goto(`${CROSS_SITE}/frames`);
      await page.waitForTimeout(300);
      for (const f of page.frames().filter((fr) => fr !== page.mainFrame())) {
        assert.equal(await f.locator('body[data-page]').count(), 0, `not rendered in a frame: ${f.url()}`);
      }
      await shots.take(page, 'framed');
    } finally {
      await context.close();
    }
  });

  test('session fixation: a session id set before login is never used', async () => {
    const { context, page, watch } = await openContext(browser, 'desktop', 'fixation');
    try {
      const planted = 'planted-session-id-0123456789abcdef0123456789abcdef';
      await context.addCookies([{ name: SESSION, value: planted, url: ORIGIN, secure: true, httpOnly: true, sameSite: 'Strict' }]);
      await login(page, S.user, S.password);
      await expectPage(page, 'inbox');
      const session = (await context.cookies()).find((c) => c.name === SESSION);
      assert.ok(session && session.value !== planted, 'a new id at login');
      const first = session.value;
      cli('grant', 'revoke', '--login', S.user);
      await goto(page, `/message?id=${encodeURIComponent(S.encrypted.uid)}&folder=INBOX`);
      await navigate(page, page.getByRole('button', { name: 'Decrypt' }));
      await page.getByLabel('Key passphrase').fill(S.key_passphrase);
      const confirm = page.getByLabel(/^Passphrase again/);
      if (await confirm.count()) await confirm.fill(S.key_passphrase);
      await navigate(page, page.getByRole('button', { name: 'OK' }));
      await expectPage(page, 'decrypted');
      const after = (await context.cookies()).find((c) => c.name === SESSION);
      assert.notEqual(after.value, first, 'a new session id at unlock');
      // The old id is dead.
      const other = await browser.newContext({ ignoreHTTPSErrors: true });
      await other.addCookies([{ name: SESSION, value: first, url: ORIGIN, secure: true, httpOnly: true, sameSite: 'Strict' }]);
      const p2 = await other.newPage();
      await p2.goto(`${ORIGIN}/inbox`);
      assert.equal(await dataPage(p2), 'login', 'the id from before the unlock no longer works');
      await other.close();
      cli('grant', 'revoke', '--login', S.user);
      await watch.assertClean();
    } finally {
      await context.close();
    }
  });
});
