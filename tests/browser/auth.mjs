// Browser test of accounts and sign-in, driven by tests/tests/browser_auth.rs (which starts the
// app, its database and an SMTP catcher, then runs this script). Real Chromium (Debian's) through
// playwright-core; plain node:assert. Mail is read through the app's /dev/mailbox pages.
//
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium), LOCKOUT_THRESHOLD
// (default 3), ARTIFACTS_DIR (where a failure screenshot goes; default a new temp dir).
//
// Covers: sign up -> emailed confirmation link -> sign in -> enrol TOTP (code computed here,
// RFC 6238) -> sign out -> sign in with a code; lockout after N bad passwords and unlock by the
// emailed link; password reset; no horizontal scroll on a phone-sized sign-in page.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL;
if (!BASE_URL) {
  console.error("auth.mjs: BASE_URL is not set (run it through `cargo test --test browser_auth`)");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const LOCKOUT_THRESHOLD = Number(process.env.LOCKOUT_THRESHOLD || "3");
const MAIL_WAIT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;
const PASSWORD = "correct horse battery staple 7";
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

// --- RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits) ------------------------------------------------
function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.toUpperCase().replace(/[\s=-]/g, "");
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const index = alphabet.indexOf(ch);
    assert.ok(index >= 0, `TOTP secret has a character that is not base32: ${ch}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, "0");
}

// RFC 6238 appendix B (SHA-1, the ASCII secret "12345678901234567890"): the implementation is right.
assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", Math.floor(59 / 30)), "287082");
assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", Math.floor(1111111109 / 30)), "081804");

const usedSteps = new Set();
// A code for a time step not used before (servers refuse a replayed code), waiting if needed.
async function freshCode(secret) {
  for (;;) {
    const now = Date.now() / 1000;
    const step = Math.floor(now / 30);
    // Too close to the end of a step: the server might already be in the next one.
    if (!usedSteps.has(step) && now - step * 30 < 27) {
      usedSteps.add(step);
      return totp(secret, step);
    }
    await sleep(500);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- page helpers -----------------------------------------------------------------------------
let page;
const log = (...args) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);

async function goto(path) {
  await page.goto(new URL(path, BASE_URL).href, { waitUntil: "load" });
}

async function submit(formLocator) {
  await Promise.all([
    page.waitForLoadState("load"),
    formLocator.locator("button[type=submit], input[type=submit]").first().click(),
  ]);
  await page.waitForLoadState("load");
}

async function fillForm(path, fields) {
  if (path) await goto(path);
  const first = Object.keys(fields)[0];
  const form = page.locator(`form:has(#${first})`);
  for (const [name, value] of Object.entries(fields)) {
    const input = form.locator(`#${name}`);
    assert.equal(await input.getAttribute("name"), name, `input #${name} has name=${name}`);
    const id = await input.getAttribute("id");
    assert.equal(await page.locator(`label[for="${id}"]`).count() > 0, true, `#${name} has a <label for>`);
    if (value === true) await input.check();
    else await input.fill(value);
  }
  assert.equal(await form.locator("input[type=hidden][name=csrf_token]").count(), 1, `the form with #${first} carries csrf_token`);
  await submit(form);
}

const path = () => new URL(page.url()).pathname;
const flashText = async () => (await page.locator("[data-testid=flash]").first().textContent())?.trim() ?? "";
const bodyText = async () => (await page.locator("body").textContent()) ?? "";

async function signIn(email, password) {
  await fillForm("/signin", { email, password });
}

async function signOut() {
  const button = page.getByRole("button", { name: "Sign out" });
  await Promise.all([page.waitForLoadState("load"), button.click()]);
  await page.waitForLoadState("load");
  await page.getByRole("link", { name: "Sign in" }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
}

// The newest link in mail to `email` whose path starts with `prefix`, read through /dev/mailbox.
// `after` is the highest message id seen before the action that sends it.
async function mailedLink(email, prefix, after = 0) {
  const deadline = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    await goto(`/dev/mailbox?to=${encodeURIComponent(email)}`);
    const hrefs = await page.locator("[data-testid=mailbox-item] a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    for (const href of hrefs) {
      const id = Number(href.split("/").pop());
      if (id <= after) continue;
      await goto(href);
      const links = await page.locator("[data-testid=mail-link]").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
      const link = links.find((l) => new URL(l).pathname.startsWith(prefix));
      if (link) {
        assert.ok(link.startsWith("http"), `email links are absolute: ${link}`);
        return link;
      }
      await goto(`/dev/mailbox?to=${encodeURIComponent(email)}`);
    }
    assert.ok(Date.now() < deadline, `no email to ${email} with a ${prefix} link within ${MAIL_WAIT_MS} ms`);
    await sleep(300);
  }
}

async function newestMailId() {
  await goto("/dev/mailbox");
  // evaluateAll does not wait for an element to appear (an empty mailbox is an answer).
  const hrefs = await page.locator("[data-testid=mailbox-item] a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  return hrefs.length > 0 ? Number(hrefs[0].split("/").pop()) : 0;
}

// Sign up and confirm by the emailed link; ends signed out, on /signin.
async function signUpAndConfirm(email, password) {
  const before = await newestMailId();
  await fillForm("/signup", { email, password });
  assert.match(await bodyText(), /check your email/i, "sign-up says to check email");
  log("  signed up; waiting for the confirmation email");
  const link = await mailedLink(email, "/confirm", before);
  log("  confirmation email read");
  await page.goto(link, { waitUntil: "load" });
  assert.equal(path(), "/signin", "the confirmation link leads to /signin");
  assert.notEqual(await flashText(), "", "a flash says the address is confirmed");
}

// --- the flows ----------------------------------------------------------------------------------
async function signUpConfirmTotp() {
  const email = `totp-${run}@example.com`;
  log("sign up, confirm, sign in:", email);
  await signUpAndConfirm(email, PASSWORD);
  await signIn(email, PASSWORD);
  assert.equal(path(), "/account", "sign-in lands on /account");

  log("enrol TOTP");
  await goto("/account/two-factor");
  const secret = (await page.locator("[data-testid=totp-secret]").textContent()).trim();
  assert.ok(secret.replace(/\s/g, "").length >= 16, "a TOTP secret is shown");
  await fillForm(null, { code: await freshCode(secret) });
  await page.locator("[data-testid=recovery-codes]").waitFor({ timeout: STEP_TIMEOUT_MS });
  const codes = ((await page.locator("[data-testid=recovery-codes]").textContent()) ?? "").trim();
  assert.ok(codes.length > 0, "recovery codes are shown once");

  await signOut();
  return { email, secret };
}

// Runs after the other flows: a code for a new time step (the enrolment's is spent) is then
// usually ready without waiting.
async function signInWithTotp({ email, secret }) {
  log("sign in with a TOTP code");
  await signIn(email, PASSWORD);
  assert.equal(path(), "/signin/two-factor", "with TOTP on, sign-in asks for a code");
  await fillForm(null, { code: "000000" === totp(secret, Math.floor(Date.now() / 30000)) ? "111111" : "000000" });
  assert.notEqual(path(), "/account", "a wrong code does not sign in");
  if (path() !== "/signin/two-factor") {
    await signIn(email, PASSWORD);
  }
  await fillForm(null, { code: await freshCode(secret) });
  assert.equal(path(), "/account", "the right code signs in");
  await signOut();
}

async function lockoutAndUnlock() {
  const email = `lockout-${run}@example.com`;
  log("lockout after", LOCKOUT_THRESHOLD, "bad passwords:", email);
  await signUpAndConfirm(email, PASSWORD);
  const before = await newestMailId();
  for (let i = 1; i <= LOCKOUT_THRESHOLD; i++) {
    await signIn(email, `wrong password ${i}`);
    assert.notEqual(path(), "/account", `bad password ${i} does not sign in`);
  }
  await signIn(email, PASSWORD);
  assert.notEqual(path(), "/account", "a locked account does not sign in even with the right password");
  const link = await mailedLink(email, "/unlock", before);
  log("unlock by the emailed link");
  await page.goto(link, { waitUntil: "load" });
  await signIn(email, PASSWORD);
  assert.equal(path(), "/account", "after unlocking, the right password signs in");
  await signOut();
}

async function passwordReset() {
  const email = `reset-${run}@example.com`;
  const newPassword = "a brand new passphrase 42";
  log("password reset:", email);
  await signUpAndConfirm(email, PASSWORD);
  const before = await newestMailId();
  await fillForm("/password/forgot", { email });
  assert.notEqual(await flashText() + (await bodyText()), "", "the forgot page answers");
  const link = await mailedLink(email, "/password/reset", before);
  await page.goto(link, { waitUntil: "load" });
  await fillForm(null, { password: newPassword });
  await signIn(email, PASSWORD);
  assert.notEqual(path(), "/account", "the old password no longer works");
  await signIn(email, newPassword);
  assert.equal(path(), "/account", "the new password signs in");
  await signOut();
}

// app.js loaded and Stimulus connected: the password field's Show button appears and works.
async function scriptsRun() {
  log("scripts: Turbo and Stimulus load, the password toggle works");
  await goto("/signin");
  const toggle = page.locator("[data-password-visibility-target=toggle]").first();
  await toggle.waitFor({ state: "visible" });
  const input = page.locator("#password");
  assert.equal(await input.getAttribute("type"), "password");
  await toggle.click();
  assert.equal(await input.getAttribute("type"), "text", "Show reveals the password");
  assert.equal(await toggle.getAttribute("aria-pressed"), "true");
  await toggle.click();
  assert.equal(await input.getAttribute("type"), "password", "Hide masks it again");
  assert.equal(await page.evaluate(() => typeof window.Turbo), "object", "Turbo is loaded");
}

async function phoneViewport(browser) {
  log("phone-sized viewport: no horizontal scroll");
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const phone = await context.newPage();
  try {
    for (const p of ["/signin", "/signup"]) {
      await phone.goto(new URL(p, BASE_URL).href, { waitUntil: "load" });
      const { scrollWidth, innerWidth } = await phone.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      assert.ok(scrollWidth <= innerWidth, `${p} scrolls sideways on a phone: ${scrollWidth}px wide in ${innerWidth}px`);
      const viewport = await phone.locator("meta[name=viewport]").getAttribute("content");
      assert.match(viewport ?? "", /width=device-width/, "the layout sets a viewport meta");
    }
  } finally {
    await context.close();
  }
}

// --- main -----------------------------------------------------------------------------------------
const started = Date.now();
log("launching", CHROMIUM);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext();
context.setDefaultTimeout(STEP_TIMEOUT_MS);
page = await context.newPage();
log("browser ready");
const cspViolations = [];
page.on("console", (message) => {
  if (message.type() === "error" && /Content Security Policy/i.test(message.text())) {
    cspViolations.push(`${page.url()}: ${message.text()}`);
  }
});
page.on("pageerror", (error) => cspViolations.push(`${page.url()}: uncaught ${error.message}`));

let failed = false;
try {
  const enrolled = await signUpConfirmTotp();
  await lockoutAndUnlock();
  await passwordReset();
  await phoneViewport(browser);
  await scriptsRun();
  await signInWithTotp(enrolled);
  // Nothing inline anywhere: a blocked script or style means a template or a vendored library
  // needs changing (or, for Turbo's progress-bar style, its hash in the CSP in http/web.rs).
  assert.deepEqual(cspViolations, [], "no page breaks the CSP and no page throws");
  log(`all browser checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  failed = true;
  console.error(`\nFAILED at ${page.url()}:\n${error.stack || error}`);
  try {
    const dir = process.env.ARTIFACTS_DIR || mkdtempSync(join(tmpdir(), "ringledger-browser-"));
    const shot = join(dir, "failure.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.error(`screenshot: ${shot}`);
    console.error(`page text: ${(await bodyText()).replace(/\s+/g, " ").slice(0, 1500)}`);
  } catch (shotError) {
    console.error(`no screenshot: ${shotError.message}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
