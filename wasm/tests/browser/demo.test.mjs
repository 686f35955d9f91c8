// The demo page in headless Chromium, the way an administrator uses it: type an invalid
// filter, see the error underlined at the right place and the message; fix it, see it
// accepted; take a completion. Screenshots go to target/wasm-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { serve, launch, wasmDir } from "./harness.mjs";

const artifacts = join(wasmDir, "..", "target", "wasm-artifacts");
let server, browser, page;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await serve();
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 960, height: 640 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${server.base}/www/index.html`);
  await page.waitForSelector("body[data-ready]", { timeout: 15000 });
  assert.deepEqual(errors, []);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** Where the marker is drawn, in characters from the start of the input's text. */
async function markerColumn(field) {
  return page.evaluate((field) => {
    const input = document.querySelector(`#${field}-input`);
    const marker = document.querySelector(`#${field} .marker`);
    const probe = document.createElement("span");
    probe.textContent = "x".repeat(100);
    probe.style.font = getComputedStyle(input).font;
    probe.style.position = "absolute";
    probe.style.whiteSpace = "pre";
    document.body.append(probe);
    const charWidth = probe.getBoundingClientRect().width / 100;
    probe.remove();
    const style = getComputedStyle(input);
    const textLeft = input.getBoundingClientRect().left + parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth);
    return (marker.getBoundingClientRect().left - textLeft) / charWidth;
  }, field);
}

async function state(field) {
  return page.evaluate((field) => {
    const marker = document.querySelector(`#${field} .marker`);
    return {
      status: document.querySelector(`#${field}-status`).textContent,
      valid: document.querySelector(`#${field}-status`).classList.contains("valid"),
      markerShown: !marker.hidden,
      position: Number(marker.dataset.position),
      length: Number(marker.dataset.length),
      marked: marker.textContent,
    };
  }, field);
}

test("an invalid SCIM filter is underlined where it goes wrong, then accepted once fixed", async () => {
  const input = page.locator("#scim-input");
  await input.click();
  await input.pressSequentially('userName eq "bjensen" an title pr');
  const bad = await state("scim");
  assert.equal(bad.valid, false);
  assert.equal(bad.markerShown, true);
  assert.deepEqual([bad.position, bad.length, bad.marked], [22, 2, "an"]);
  assert.match(bad.status, /expected `and`, `or` or the end of the filter, found `an` \(column 23\)/);
  const column = await markerColumn("scim");
  assert.ok(Math.abs(column - 22) < 0.5, `the marker is drawn at column ${column}, not 22`);
  await page.screenshot({ path: join(artifacts, "demo-invalid.png") });

  await input.fill("");
  await input.pressSequentially('userName eq "bjensen" and title pr');
  const good = await state("scim");
  assert.equal(good.valid, true);
  assert.equal(good.markerShown, false);
  assert.match(good.status, /valid/);
  await page.screenshot({ path: join(artifacts, "demo-valid.png") });
});

test("a typo in an attribute name is a warning, not an error", async () => {
  const input = page.locator("#scim-input");
  await input.fill("");
  await input.pressSequentially('usrName eq "a"');
  const s = await state("scim");
  assert.equal(s.valid, true);
  assert.match(s.status, /`usrName` is not an attribute of User/);
});

test("completions follow the cursor and Tab takes one", async () => {
  const input = page.locator("#scim-input");
  await input.fill("");
  await input.pressSequentially("emails[ty");
  const offered = await page.locator("#scim-completions li").allTextContents();
  assert.ok(offered.some((t) => t.startsWith("type")), `offered ${offered}`);
  await input.press("Tab");
  assert.equal(await input.inputValue(), "emails[type");
  await input.pressSequentially(" ");
  const operators = await page.locator("#scim-completions li").allTextContents();
  assert.ok(operators.some((t) => t.startsWith("eq")), `offered ${operators}`);
});

test("an LDAP filter missing its closing parenthesis is marked at the end", async () => {
  const input = page.locator("#ldap-input");
  await input.click();
  await input.pressSequentially("(&(objectClass=person)(uid=jdoe)");
  const s = await state("ldap");
  assert.equal(s.valid, false);
  assert.deepEqual([s.position, s.length], [32, 0]);
  assert.ok(Math.abs((await markerColumn("ldap")) - 32) < 0.5);
  await input.press("End");
  await input.pressSequentially(")");
  assert.equal((await state("ldap")).valid, true);
  await page.screenshot({ path: join(artifacts, "demo-ldap.png") });
});
