// Browser test of buying credit, driven by tests/tests/browser_checkout.rs (which starts the app,
// the Stripe test double and a confirmed user). Real Chromium through playwright-core.
//
// Environment: BASE_URL, SIM_URL (the double), EMAIL, PASSWORD (required); CHROMIUM (default
// /usr/bin/chromium); EXPECT_CREDIT ("1": wait for the webhook side to credit the payment and
// check the balance; "0": stop once the success page says the payment is processing — the
// crediting is the payments work's, see browser_checkout.rs); ARTIFACTS_DIR.
//
// Covers: sign in -> Buy credit -> the 10.00 USD tier -> the double's page -> the decline card is
// refused there -> the success card -> the success page says "processing" -> (EXPECT_CREDIT) the
// balance turns to 10.00 USD without a reload; a second purchase paid only with the decline card
// credits nothing. The buy page has no horizontal scroll on a phone.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const { BASE_URL, SIM_URL, EMAIL, PASSWORD } = process.env;
if (!BASE_URL || !SIM_URL || !EMAIL || !PASSWORD) {
  console.error("checkout.mjs: BASE_URL, SIM_URL, EMAIL and PASSWORD must be set (run it through `cargo test --test browser_checkout`)");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const EXPECT_CREDIT = process.env.EXPECT_CREDIT === "1";
const STEP_TIMEOUT_MS = 15_000;
const CREDIT_TIMEOUT_MS = 30_000;
const SUCCESS_CARD = "4242 4242 4242 4242";
const DECLINE_CARD = "4000 0000 0000 0002";

let page;
const log = (...args) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
const path = () => new URL(page.url()).pathname;
const text = async (testid) => ((await page.locator(`[data-testid=${testid}]`).first().textContent()) ?? "").trim();
const bodyText = async () => (await page.locator("body").textContent()) ?? "";

async function clickAndLoad(locator) {
  await Promise.all([page.waitForLoadState("load"), locator.click()]);
  await page.waitForLoadState("load");
}

async function signIn() {
  await page.goto(new URL("/signin", BASE_URL).href, { waitUntil: "load" });
  await page.locator("#email").fill(EMAIL);
  await page.locator("#password").fill(PASSWORD);
  await clickAndLoad(page.locator("form:has(#email) button[type=submit]"));
  assert.equal(path(), "/account", "sign-in lands on /account");
}

// From /account to the double's payment page for the 10.00 USD tier.
async function buyTen() {
  await page.goto(new URL("/account", BASE_URL).href, { waitUntil: "load" });
  // The buy page asks Turbo for a full load (its CSP lets the form go to Stripe).
  await page.locator("[data-testid=buy-credit]").click();
  await page.waitForURL((url) => url.pathname === "/account/credit");
  await page.locator("[data-testid=buy-10]").waitFor();
  await clickAndLoad(page.locator("[data-testid=buy-10]"));
  assert.ok(page.url().startsWith(`${SIM_URL}/c/pay/cs_test_`), `on the double's payment page: ${page.url()}`);
  assert.match(await text("sim-amount"), /10\.00 USD/);
}

async function payWith(card) {
  await page.locator("#card_number").fill(card);
  await clickAndLoad(page.getByRole("button", { name: /^Pay 10\.00 USD$/ }));
}

async function phoneHasNoSideScroll() {
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto(new URL("/account/credit", BASE_URL).href, { waitUntil: "load" });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the buy page scrolls sideways on a phone by ${overflow}px`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function buyTenDeclineThenPay() {
  log("buy the 10.00 USD tier");
  await buyTen();
  log("the decline card is refused on the payment page");
  await payWith(DECLINE_CARD);
  assert.ok(page.url().startsWith(`${SIM_URL}/c/pay/`), "a decline stays on the payment page");
  assert.match(await text("sim-error"), /declined/i);
  log("pay with the success card");
  await payWith(SUCCESS_CARD);
  assert.equal(path(), "/account/credit/success", "back on our success page");
  const status = await text("payment-status");
  assert.ok(/Payment received|Credit added/.test(status), `the page says the payment is in: ${status}`);
  console.log(`SUCCESS_PAGE ${page.url()}`);
  // A marker that a reload or navigation would wipe: the balance must change under it.
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  if (!EXPECT_CREDIT) {
    assert.equal(status, "Payment received. Adding the credit to your balance…");
    log("stopping before the credit (EXPECT_CREDIT=0)");
    return;
  }
  log("wait for the credit to show without a reload");
  await page.locator("[data-testid=balance]", { hasText: "10.00 USD" }).waitFor({ timeout: CREDIT_TIMEOUT_MS });
  assert.equal(await text("payment-status"), "Credit added.");
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, "the balance updated without a reload");
}

async function declineOnlyCreditsNothing() {
  log("a purchase paid only with the decline card credits nothing");
  await buyTen();
  await payWith(DECLINE_CARD);
  assert.match(await text("sim-error"), /declined/i);
  await clickAndLoad(page.getByRole("link", { name: /Back to the shop/ }));
  await page.waitForURL((url) => url.pathname === "/account/credit/cancel");
  assert.match(await text("payment-cancelled"), /Nothing was charged/);
  await page.goto(new URL("/account/balance.json", BASE_URL).href);
  const balance = JSON.parse(await page.locator("body").textContent());
  const expected = EXPECT_CREDIT ? "10.00 USD" : "0.00 USD";
  assert.equal(balance.available_display, expected, "the declined purchase added nothing");
}

// --- main -----------------------------------------------------------------------------------------
const started = Date.now();
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext();
context.setDefaultTimeout(STEP_TIMEOUT_MS);
page = await context.newPage();
const problems = [];
page.on("console", (message) => {
  if (message.type() === "error" && /Content Security Policy/i.test(message.text())) problems.push(`${page.url()}: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`${page.url()}: uncaught ${error.message}`));

let failed = false;
try {
  await signIn();
  await phoneHasNoSideScroll();
  await buyTenDeclineThenPay();
  await declineOnlyCreditsNothing();
  assert.deepEqual(problems, [], "no page breaks the CSP and no page throws");
  log(`checkout browser checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
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
