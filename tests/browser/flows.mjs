// Every flow of DESIGN §2 in Chromium, as a person would go through it: by labels,
// buttons and links. Once in a desktop window, once in a phone window, once with
// JavaScript off. A screenshot of each step goes to ARTIFACTS/<window>/NN-step.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  RUNS, SCENARIO, Shots, checkPageHeaders, cli, dataPage, expectPage, goto, launch, login, navigate,
  openContext, sha256, widthShares,
} from './lib.mjs';

const PASSWORD = SCENARIO.password;
const KEY_PASS = SCENARIO.key_passphrase;
const MSG = SCENARIO.messages;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// The id of the element that has the focus, through the locator engine (it works with
// JavaScript off too).
async function focusedId(page) {
  const focused = page.locator(':focus');
  return (await focused.count()) ? focused.first().getAttribute('id') : null;
}

async function focusedText(page) {
  const focused = page.locator(':focus');
  return (await focused.count()) ? (await focused.first().innerText()).trim() : null;
}

// Tabs forward until the element with that id has the focus; fails after `limit` keys.
async function tabTo(page, id, limit = 12) {
  if ((await focusedId(page)) === id) return 0;
  for (let i = 0; i < limit; i += 1) {
    await page.keyboard.press('Tab');
    if ((await focusedId(page)) === id) return i + 1;
  }
  assert.fail(`Tab never reached #${id} (${page.url()})`);
}

async function openMessage(page, subject) {
  await goto(page, '/inbox');
  await navigate(page, page.getByRole('link', { name: subject }));
  await expectPage(page, 'message');
}

// The key banner (DESIGN flow 4: every page shows the key unlocked and the time left).
async function assertUnlockedBanner(page, where) {
  const banner = page.locator('.key-banner');
  await assert.doesNotReject(banner.waitFor({ state: 'visible', timeout: 2000 }),
    `the key banner on ${where}`);
  const text = await banner.innerText();
  assert.match(text, /unlocked/i, `banner says unlocked on ${where}: ${text}`);
  assert.match(text, /(\d+ min|less than a minute) left/, `banner says the time left on ${where}: ${text}`);
}

async function assertNoBanner(page, where) {
  assert.equal(await page.locator('.key-banner').count(), 0, `no key banner on ${where}`);
}

for (const run of Object.keys(RUNS)) {
  const user = SCENARIO.users[run];
  describe(`${run} window (${user})`, () => {
    const shots = new Shots(run);
    let ctx;
    before(async () => { ctx = await openContext(browser, run); });
    after(async () => { await ctx?.context.close(); });

    test('login: wrong password, then right', async () => {
      const { page, context } = ctx;
      await goto(page, '/login');
      await expectPage(page, 'login');
      await shots.take(page, 'login');
      // Labelled fields, a named button.
      await page.getByLabel('User name').fill(user);
      await page.getByLabel('Password').fill('not the password');
      await navigate(page, page.getByRole('button', { name: 'Log in' }));
      await expectPage(page, 'login', 'after a wrong password');
      assert.match(await page.getByRole('alert').innerText(), /Wrong user name or password/);
      assert.equal(await page.getByLabel('User name').inputValue(), user, 'the user name is kept');
      assert.equal(await focusedId(page), 'password', 'the cursor waits in the password field');
      await shots.take(page, 'login-failed');

      // The session cookie before and after: login gives a new id (no fixation).
      const before = (await context.cookies()).find((c) => c.name === '__Host-wmk-session');
      await page.getByLabel('Password').fill(PASSWORD);
      await navigate(page, page.getByRole('button', { name: 'Log in' }));
      await expectPage(page, 'inbox');
      const session = (await context.cookies()).find((c) => c.name === '__Host-wmk-session');
      assert.ok(session, 'a session cookie');
      assert.notEqual(session.value, before?.value);
      assert.equal(session.httpOnly, true);
      assert.equal(session.secure, true);
      assert.equal(session.sameSite, 'Strict');
    });

    test('inbox lists the messages', async () => {
      const { page } = ctx;
      await expectPage(page, 'inbox');
      for (const m of Object.values(MSG)) {
        await assert.doesNotReject(page.getByRole('link', { name: m.subject }).waitFor(),
          `inbox lists ${m.subject}`);
      }
      assert.match(await page.locator('h1').innerText(), /Inbox/);
      await shots.take(page, 'inbox');
    });

    test('a plain message opens as text', async () => {
      const { page } = ctx;
      await openMessage(page, MSG.plain.subject);
      assert.match(await page.locator('h1').innerText(), new RegExp(MSG.plain.subject.replace('?', '\\?')));
      assert.match(await page.locator('main').innerText(), new RegExp(MSG.plain.text));
      await shots.take(page, 'message-plain');
    });

    test('an attachment is a download, never shown inline', async () => {
      const { page } = ctx;
      await openMessage(page, MSG.attachment.subject);
      await shots.take(page, 'message-attachment');
      const link = page.locator('ul.attachments a').first();
      const href = await link.getAttribute('href');
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      const file = await download.path();
      const bytes = fs.readFileSync(file);
      assert.equal(bytes.length, MSG.attachment.size);
      assert.equal(sha256(bytes), MSG.attachment.sha256, 'the downloaded bytes are the attachment');
      const name = download.suggestedFilename();
      assert.doesNotMatch(name, /[\/\\"]|^\./, `a safe file name: ${name}`);
      assert.match(name, /\.pdf$/);
      // A download makes no response event: ask again with this context's cookies.
      const resp = await page.context().request.get(new URL(href, page.url()).href, { maxRetries: 2 });
      const h = resp.headers();
      assert.match(h['content-disposition'], /^attachment;/);
      assert.equal(h['content-type'], 'application/pdf', 'type from libmagic, not the sender');
      assert.match(h['content-security-policy'], /sandbox/);
      checkPageHeaders(href, resp.status(), h);
      // Opened directly, it still downloads: the page never shows it.
      const url = page.url();
      await assert.rejects(page.goto(new URL(href, url).href), /Download is starting/);
      assert.equal(page.url(), url);
      await expectPage(page, 'message');
    });

    test('compose, sign via the unlock page, review, send', async () => {
      const { page, context } = ctx;
      await goto(page, '/inbox');
      await navigate(page, page.getByRole('link', { name: 'Compose' }));
      await expectPage(page, 'compose');
      await page.getByLabel('To', { exact: true }).fill(SCENARIO.recipient);
      await page.getByLabel('Subject').fill(`Signed from the ${run} window`);
      await page.getByLabel('Message').fill('Hello Bob,\n\nthis one is signed.\n');
      assert.equal(await page.getByRole('button', { name: /^Sign/ }).getAttribute('data-key-state'), 'locked');
      await shots.take(page, 'compose');
      // The writing area uses the window: most of a phone's width, and on a desktop
      // more than a narrow column (issue 13).
      const fields = ['textarea[name=body]', 'input[name=to]', 'input[name=subject]'];
      const shares = await widthShares(page, fields);
      const least = RUNS[run].isMobile ? 0.85 : 0.5;
      for (const f of fields) {
        assert.ok(shares[f] !== null && shares[f] >= least,
          `${run}/compose: ${f} is ${Math.round((shares[f] ?? 0) * 100)}% of the window, want ≥ ${least * 100}%`);
      }
      // On the phone every button of the form can be reached and pressed: scrolled to,
      // each one lies wholly in the window.
      if (RUNS[run].isMobile) {
        const width = RUNS[run].viewport.width;
        for (const b of await page.locator('main form button').all()) {
          await b.scrollIntoViewIfNeeded();
          const r = await b.boundingBox();
          assert.ok(r && r.x >= 0 && r.x + r.width <= width && r.height >= 24,
            `${run}/compose: button ${await b.innerText()} at ${JSON.stringify(r)}`);
        }
      }
      await navigate(page, page.getByRole('button', { name: /^Sign/ }));
      // No grant yet: the unlock page first, and the draft is kept.
      await expectPage(page, 'unlock', 'after Sign without a grant');
      await shots.take(page, 'compose-unlock');
      const sessionBefore = (await context.cookies()).find((c) => c.name === '__Host-wmk-session');
      await page.getByLabel('Key passphrase').fill(KEY_PASS);
      await page.getByLabel(/^Passphrase again/).fill(KEY_PASS);
      await navigate(page, page.getByRole('button', { name: 'OK' }));
      await expectPage(page, 'signed');
      const review = await page.locator('main').innerText();
      assert.match(review, /Signed/);
      assert.match(review, /this one is signed/);
      await assertUnlockedBanner(page, 'the signed review');
      await shots.take(page, 'signed-review');
      const sessionAfter = (await context.cookies()).find((c) => c.name === '__Host-wmk-session');
      assert.notEqual(sessionAfter.value, sessionBefore.value, 'a new session id at unlock');
      await navigate(page, page.getByRole('button', { name: 'Send' }));
      await expectPage(page, 'sent');
      assert.match(await page.locator('main').innerText(), new RegExp(SCENARIO.recipient));
      await shots.take(page, 'sent');
    });

    test('encrypted message: Decrypt, unlock, in use elsewhere, stop, lock', async () => {
      const { page } = ctx;
      // Start from a locked key: the compose step above unlocked it.
      await lock(page);
      await openMessage(page, MSG.encrypted.subject);
      assert.match(await page.locator('main').innerText(), /encrypted/i);
      await shots.take(page, 'message-encrypted');
      await navigate(page, page.getByRole('button', { name: 'Decrypt' }));
      await expectPage(page, 'unlock');
      // Labelled fields, OK and Clear; Clear empties both.
      const pass = page.getByLabel('Key passphrase');
      const confirm = page.getByLabel(/^Passphrase again/);
      await pass.fill('typo');
      await confirm.fill('typo');
      await shots.take(page, 'unlock');
      await page.getByRole('button', { name: 'Clear' }).click();
      assert.equal(await pass.inputValue(), '');
      assert.equal(await confirm.inputValue(), '');
      // A wrong passphrase: a clear message, and no grant.
      await pass.fill('wrong passphrase');
      await confirm.fill('wrong passphrase');
      await navigate(page, page.getByRole('button', { name: 'OK' }));
      assert.ok(['unlock', 'message'].includes(await dataPage(page)), 'back before Decrypt');
      assert.match(await page.getByRole('alert').innerText(), /passphrase/i);
      await assertNoBanner(page, 'the wrong-passphrase page');
      await shots.take(page, 'unlock-wrong');
      if ((await dataPage(page)) === 'message') {
        await navigate(page, page.getByRole('button', { name: 'Decrypt' }));
      }
      await page.getByLabel('Key passphrase').fill(KEY_PASS);
      await page.getByLabel(/^Passphrase again/).fill(KEY_PASS);
      await navigate(page, page.getByRole('button', { name: 'OK' }));
      await expectPage(page, 'decrypted');
      assert.match(await page.locator('main').innerText(), new RegExp(MSG.encrypted.text));
      await assertUnlockedBanner(page, 'the decrypted message');
      await shots.take(page, 'decrypted');
      // Every page now shows the key unlocked and the time left; the Decrypt and Sign
      // buttons change look.
      for (const p of ['/inbox', '/compose', '/keys']) {
        await goto(page, p);
        await assertUnlockedBanner(page, p);
        if (p === '/keys') await shots.take(page, 'keys-unlocked');
      }
      await checkLiveTimeLeft(page, run);
      await goto(page, '/compose');
      const sign = page.getByRole('button', { name: /^Sign/ });
      assert.match(await sign.innerText(), /unlocked/);
      assert.match(await sign.getAttribute('class'), /\bunlocked\b/);
      await shots.take(page, 'compose-unlocked');
      await openMessage(page, MSG.encrypted.subject);
      const decrypt = page.getByRole('button', { name: /^Decrypt/ });
      assert.match(await decrypt.innerText(), /unlocked/);
      assert.match(await decrypt.getAttribute('class'), /\bunlocked\b/);
      await shots.take(page, 'message-unlocked');

      // A second browser (a second session) wants the same key.
      const other = await openContext(browser, run, `${run}-second`);
      try {
        const p2 = other.page;
        await login(p2, user, PASSWORD);
        await expectPage(p2, 'inbox');
        await openMessage(p2, MSG.encrypted.subject);
        await navigate(p2, p2.getByRole('button', { name: 'Decrypt' }));
        await expectPage(p2, 'in-use');
        assert.match(await p2.locator('main').innerText(), /in use elsewhere|another session/i);
        await shots.take(p2, 'second-in-use');
        await navigate(p2, p2.getByRole('button', { name: 'Decrypt' }));
        await expectPage(p2, 'confirm-stop');
        await shots.take(p2, 'second-confirm-stop');
        await navigate(p2, p2.getByRole('button', { name: 'OK' }));
        await expectPage(p2, 'unlock');
        await p2.getByLabel('Key passphrase').fill(KEY_PASS);
        await p2.getByLabel(/^Passphrase again/).fill(KEY_PASS);
        await navigate(p2, p2.getByRole('button', { name: 'OK' }));
        await expectPage(p2, 'decrypted');
        await assertUnlockedBanner(p2, 'the second session');
        await shots.take(p2, 'second-decrypted');

        // The first session is told at its next request, and its key is locked.
        await goto(page, '/inbox');
        await assertNoBanner(page, 'the first session after the stop');
        assert.match(await page.locator('main .notice').first().innerText(), /session|stopped|locked/i);
        await shots.take(page, 'first-told');

        // Lock in the second session: the banner goes, the grant is gone.
        await lock(p2);
        await assertNoBanner(p2, 'after Lock');
        await shots.take(p2, 'second-locked');
        assert.deepEqual(cli('grant', 'list', '--login', user).filter((g) => g.live), [],
          'no live grant after Lock');
        await other.watch.assertClean();
      } finally {
        await other.context.close();
      }
    });

    test('keyboard: tab order reaches the fields and the buttons', async () => {
      const kb = await openContext(browser, run, `${run}-keyboard`);
      try {
        const page = kb.page;
        await goto(page, '/login');
        await tabTo(page, 'user');
        await page.keyboard.type(user);
        await page.keyboard.press('Tab');
        assert.equal(await focusedId(page), 'password');
        await page.keyboard.type(PASSWORD);
        await page.keyboard.press('Tab');
        assert.equal(await focusedText(page), 'Log in');
        await shots.take(page, 'keyboard-login');
        const committed = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
        await page.keyboard.press('Enter');
        await committed;
        await page.waitForLoadState('load');
        await expectPage(page, 'inbox', 'after Enter on Log in');
        // Decrypt by keyboard, the passphrase typed, OK by Enter.
        await openMessage(page, MSG.encrypted.subject);
        await page.getByRole('button', { name: 'Decrypt' }).focus();
        const toUnlock = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
        await page.keyboard.press('Enter');
        await toUnlock;
        await page.waitForLoadState('load');
        const state = await dataPage(page);
        assert.ok(['unlock', 'in-use'].includes(state), state);
        if (state === 'unlock') {
          assert.equal(await focusedId(page), 'passphrase', 'the unlock page starts in the passphrase field');
          await page.keyboard.press('Tab');
          assert.equal(await focusedId(page), 'confirm');
          await page.keyboard.press('Tab');
          assert.equal(await focusedText(page), 'OK');
          await page.keyboard.press('Tab');
          assert.equal(await focusedText(page), 'Clear');
          await shots.take(page, 'keyboard-unlock');
        }
        await kb.watch.assertClean();
      } finally {
        await kb.context.close();
      }
    });

    test("a correspondent's key imported on Your keys", async () => {
      const { page } = ctx;
      const contact = SCENARIO.contact;
      await goto(page, '/keys');
      await expectPage(page, 'keys');
      await page.getByLabel('or paste it').fill(contact.armored);
      await page.getByLabel('For the addresses').fill(contact.email);
      await shots.take(page, 'keys-import-form');
      await navigate(page, page.getByRole('button', { name: 'Import' }));
      await expectPage(page, 'contact-imported');
      assert.equal(await page.locator('code.fingerprint').getAttribute('data-fingerprint'),
        contact.fingerprint);
      assert.match(await page.locator('ul.bindings').innerText(), new RegExp(contact.email));
      await shots.take(page, 'contact-imported');
    });

    test('compose: a recipient without a key is named, and a WKD lookup finds it', async () => {
      const { page } = ctx;
      const wkd = SCENARIO.wkd;
      await goto(page, '/compose');
      await expectPage(page, 'compose');
      await page.getByLabel('To', { exact: true }).fill(wkd.address);
      await page.getByLabel('Subject').fill('Plans for the weekend');
      await page.getByLabel('Message').fill('Hello,\n\nshall we go sailing on Saturday?\n');
      await page.getByRole('checkbox', { name: /Encrypt to every recipient/ }).check();
      await page.getByRole('radio', { name: /OpenPGP/ }).check();
      await navigate(page, page.getByRole('button', { name: /^Encrypt/ }));
      // Nothing is sent: the address without a key is named, and a lookup offered.
      await expectPage(page, 'compose', 'after Encrypt to an address without a key');
      const missing = page.locator('section.missing-keys');
      assert.match(await missing.innerText(), new RegExp(wkd.address));
      assert.equal(await missing.locator(`li[data-address="${wkd.address}"]`).getAttribute('data-reason'), 'none');
      await missing.scrollIntoViewIfNeeded();
      await shots.take(page, 'compose-missing-key');
      await navigate(page, page.getByRole('button', { name: 'Look up their keys' }));
      await expectPage(page, 'compose', 'after the lookup');
      const found = page.locator(`section.key-lookup li[data-address="${wkd.address}"]`);
      assert.equal(await found.getAttribute('data-result'), 'found');
      assert.match(await found.innerText(), new RegExp(wkd.fingerprint));
      assert.equal(await page.locator('section.missing-keys').count(), 0, 'nobody is missing a key now');
      // The draft is kept as it was written.
      assert.equal(await page.getByLabel('Subject').inputValue(), 'Plans for the weekend');
      await shots.take(page, 'compose-lookup');
      const bound = cli('contact', 'list', user).find((k) => k.fingerprint === wkd.fingerprint);
      assert.deepEqual(bound?.bindings.map((b) => [b.email, b.source]), [[wkd.address, 'wkd']]);
    });

    test('logout ends the session', async () => {
      const { page, context, watch } = ctx;
      await goto(page, '/inbox');
      await navigate(page, page.getByRole('button', { name: 'Log out' }));
      await expectPage(page, 'login');
      await shots.take(page, 'logged-out');
      assert.equal((await context.cookies()).find((c) => c.name === '__Host-wmk-session'), undefined);
      await goto(page, '/inbox');
      await expectPage(page, 'login', 'the inbox after logout');
      // Back to a page with mail: not from the browser's cache (no-store).
      await page.goBack();
      await page.waitForLoadState('load');
      assert.notEqual(await dataPage(page), 'inbox', 'the back button shows no mail after logout');
      await watch.assertClean();
    });
  });
}

// Locks the key with the banner's Lock button (every page has it while a key is unlocked).
async function lock(page) {
  await navigate(page, page.locator('.key-banner').getByRole('button', { name: 'Lock' }));
}

// With JavaScript, the banner's time left counts down while the page stays open
// (/static/banner.js); without it, the page still says what the server wrote.
async function checkLiveTimeLeft(page, run) {
  const state = page.locator('.key-banner .key-state').first();
  if (!RUNS[run].javaScriptEnabled) {
    assert.equal(await page.locator('script').count(), 1, 'the one script tag is there');
    return;
  }
  await page.clock.install();
  await goto(page, '/inbox');
  const seconds = Number(await state.getAttribute('data-seconds-left'));
  const shown = await state.locator('.time-left').innerText();
  assert.equal(shown, `${Math.floor(seconds / 60)} min left`);
  await page.clock.fastForward('03:00');
  assert.equal(await state.locator('.time-left').innerText(), `${Math.floor((seconds - 180) / 60)} min left`);
  await page.clock.fastForward(seconds * 1000);
  assert.match(await state.locator('.time-left').innerText(), /time is up/);
}
