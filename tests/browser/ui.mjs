// The web UI in a real browser: Debian's chromium, driven by playwright-core, every page
// checked by axe-core. Run by host/cli/tests/all/ui.rs, which starts `wharf serve`, makes
// app `hello` with environment `dev` and a viewer of the app, and writes the Score files;
// this script does what a developer does in the browser and says what it saw.
//
// Environment: WHARF_URL, WHARF_BIN (the wharf binary), WHARF_ADMIN_TOKEN,
// WHARF_VIEWER_TOKEN, WHARF_WORK (the directory with v1.yaml, v2.yaml, server.py),
// WHARF_SCREENSHOTS (a directory for screenshots, optional), CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import path from "node:path";

const url = process.env.WHARF_URL;
const admin = process.env.WHARF_ADMIN_TOKEN;
const viewerToken = process.env.WHARF_VIEWER_TOKEN;
const work = process.env.WHARF_WORK;
const shots = process.env.WHARF_SCREENSHOTS;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const env = "/ui/apps/hello/envs/dev";

function step(text) {
  console.log(`- ${text}`);
}

async function api(route, options = {}) {
  const response = await fetch(`${url}/api/v1${route}`, {
    ...options,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function latestDeployment() {
  const { body } = await api("/apps/hello/envs/dev/deployments");
  return Math.max(0, ...body.map((d) => d.id));
}

function deploy(file) {
  execFileSync(process.env.WHARF_BIN, ["deploy", "-f", path.join(work, file), "--app", "hello", "--env", "dev"], {
    env: { ...process.env, WHARF_SERVER: url, WHARF_TOKEN: admin },
    stdio: "pipe",
  });
}

// No serious or critical accessibility violation on the page as it is.
async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `axe-core on ${name}`,
  );
  step(`axe-core: no serious or critical violation on ${name} (${result.violations.length} minor)`);
}

async function screenshot(page, name) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function signIn(context, token) {
  const page = await context.newPage();
  await page.goto(`${url}/ui/`);
  assert.match(page.url(), /\/ui\/login\?next=/, "an anonymous visit goes to the sign-in page");
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/ui/`);
  return page;
}

// The CSRF token of the page's session (from the sign-out form).
async function csrfOf(page) {
  return page.locator("form.signout input[name=csrf]").getAttribute("value");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const desktop = { viewport: { width: 1440, height: 900 } };
const mobile = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };
try {
  // Sign in with the admin's token.
  const context = await browser.newContext(desktop);
  const login = await context.newPage();
  await login.goto(`${url}/ui/login`);
  await accessible(login, "the sign-in page");
  await screenshot(login, "sign-in");
  const cookies = () => context.cookies(`${url}/ui/`);
  const page = await signIn(context, admin);
  const session = (await cookies()).find((c) => c.name === "wharf_session");
  assert.ok(session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and strict");
  assert.ok(!page.url().includes(admin), "the token is not in the URL");
  assert.ok(!(await page.content()).includes(admin), "the token is not in the page");
  await page.getByRole("heading", { name: "hello" }).waitFor();
  step("signed in with the admin's token; the apps page lists hello");

  // Deploy; the deployment page follows it to `succeeded` without a reload.
  deploy("v1.yaml");
  const first = await latestDeployment();
  await page.goto(`${url}${env}/deployments/${first}`);
  const status = page.locator("#deployment-status .badge");
  const before = await status.getAttribute("data-state");
  assert.ok(["queued", "running"].includes(before), `the page opened while it ran (it was ${before})`);
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  await page.locator('#deployment-status .badge[data-state="succeeded"]').waitFor({ timeout: 90_000 });
  assert.equal(await page.evaluate(() => window.notReloaded), true, "no reload");
  assert.equal(await page.locator('#steps tr[data-step="verify"] .badge').getAttribute("data-state"), "done");
  step(`deployment #${first}: the page went from ${before} to succeeded live, without a reload`);
  await accessible(page, "the deployment page");
  await screenshot(page, "deployment");

  // The environment: the workload's endpoint, the password resource by name only.
  await page.goto(`${url}${env}`);
  const endpoint = await page.locator("a.endpoint").first().getAttribute("href");
  assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  const answer = await (await fetch(endpoint)).text();
  assert.match(answer, /Hello from hello \(version 1\)/);
  const password = page.locator("tr", { has: page.locator("code", { hasText: "password.default#hello.session" }) });
  await assert.doesNotReject(password.getByText("secret (not shown)").waitFor());
  step(`the environment page links ${endpoint} and shows the password as a secret, by name only`);
  // Tail the logs: the request just made shows up.
  await page.getByRole("button", { name: "Tail the logs" }).click();
  await page.locator("#log", { hasText: "GET /" }).waitFor({ timeout: 30_000 });
  await fetch(`${endpoint}/tailed`);
  await page.locator("#log", { hasText: "GET /tailed" }).waitFor({ timeout: 30_000 });
  await page.getByRole("button", { name: "Stop" }).click();
  step("the log tail shows a request made while it ran");
  await accessible(page, "the environment page");
  await screenshot(page, "environment");

  // A second version, then roll back to the first from the history.
  deploy("v2.yaml");
  const second = await latestDeployment();
  await page.goto(`${url}${env}/deployments/${second}`);
  await page.locator('#deployment-status .badge[data-state="succeeded"]').waitFor({ timeout: 90_000 });
  await page.goto(`${url}${env}`);
  await page.getByRole("link", { name: `Roll back to #${first}` }).click();
  await page.getByRole("heading", { name: `Roll back to deployment #${first}` }).waitFor();
  assert.ok(await page.getByText("/workloads/hello/containers/web/command").count() > 0, "the confirmation names what changes");
  await accessible(page, "the rollback confirmation");
  await page.getByRole("button", { name: `Roll back to deployment #${first}` }).click();
  await page.waitForURL(new RegExp(`${env}/deployments/\\d+$`));
  await page.locator('#deployment-status .badge[data-state="succeeded"]').waitFor({ timeout: 90_000 });
  const rolled = await api("/apps/hello/envs/dev/status");
  const original = await api(`/apps/hello/envs/dev/deployments/${first}`);
  assert.equal(rolled.body.set, original.body.set, "the environment runs the first set again");
  step(`rolled back to #${first} from the history`);

  // The diff between two sets, and the other pages, pass axe-core.
  await page.goto(`${url}${env}/diff?from=${first}&to=${second}`);
  await page.getByText("/workloads/hello/containers/web/command").first().waitFor();
  await accessible(page, "the set diff");
  await page.goto(`${url}/ui/`);
  await accessible(page, "the apps page");
  await screenshot(page, "apps");
  await page.goto(`${url}/ui/platform?type=password&app=hello&env=dev`);
  await page.getByText("Definition password").waitFor();
  await accessible(page, "the platform page");
  await page.getByRole("button", { name: "Disable echo" }).click();
  await page.getByRole("button", { name: "Enable echo" }).click();
  await page.getByRole("button", { name: "Disable echo" }).waitFor();
  const echo = await api("/plugin-installations/echo");
  assert.equal(echo.body.enabled, true);
  assert.equal(echo.body.revision, 3, "disabled, then enabled again");
  step("the platform page explains a match, and disables and enables an installation");
  await screenshot(page, "platform");
  await page.goto(`${url}/ui/audit?action=deployments.`);
  await accessible(page, "the audit page");

  // A form without the session's CSRF token is refused, and deploys nothing.
  const count = await latestDeployment();
  const forged = await page.request.post(`${url}${env}/deployments`, {
    form: { action: "rollback", to: String(first) },
  });
  assert.equal(forged.status(), 403, "a forged form is refused");
  assert.equal(await latestDeployment(), count, "nothing was deployed");
  step("a form without the CSRF token is refused with 403");

  // Mobile width.
  const phone = await browser.newContext({ ...mobile, storageState: await context.storageState() });
  const small = await phone.newPage();
  for (const [route, name] of [["/ui/", "apps"], [env, "environment"], [`${env}/deployments/${first}`, "deployment"]]) {
    await small.goto(`${url}${route}`);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${name} fits 375 px (overflows by ${overflow} px)`);
    await screenshot(small, `${name}-mobile`);
  }
  step("the apps, environment and deployment pages fit 375 px");
  await phone.close();

  // Sign out: the session is gone.
  await page.goto(`${url}/ui/`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out.").waitFor();
  await page.goto(`${url}${env}`);
  assert.match(page.url(), /\/ui\/login/, "signed out, a page asks to sign in again");
  step("signed out");
  await context.close();

  // A viewer sees no deploy or roll back button, and the form posted directly is refused.
  const viewing = await browser.newContext(desktop);
  const viewer = await signIn(viewing, viewerToken);
  await viewer.goto(`${url}${env}`);
  await viewer.getByRole("heading", { name: "Workloads" }).waitFor();
  assert.equal(await viewer.getByRole("link", { name: /Roll back/ }).count(), 0);
  // Another app is not listed, and its pages are refused.
  await viewer.goto(`${url}/ui/`);
  await viewer.getByRole("heading", { name: "hello" }).waitFor();
  assert.equal(await viewer.getByRole("heading", { name: "other" }).count(), 0, "another app is not listed");
  const other = await viewer.goto(`${url}/ui/apps/other/envs/dev`);
  assert.equal(other.status(), 403, "another app's environment is refused");
  assert.equal(await viewer.getByRole("heading", { name: "Workloads" }).count(), 0, "nothing of it is shown");
  await viewer.getByText("Not allowed").waitFor();
  await viewer.goto(`${url}${env}`);
  assert.equal(await viewer.getByRole("link", { name: /Redeploy/ }).count(), 0);
  const refused = await viewer.request.post(`${url}${env}/deployments`, {
    form: { csrf: await csrfOf(viewer), action: "rollback", to: String(first) },
  });
  assert.equal(refused.status(), 403, "the viewer's form is refused");
  assert.match(await refused.text(), /deployments\.create/);
  assert.equal(await latestDeployment(), count, "nothing was deployed");
  await viewer.goto(`${url}/ui/platform`);
  await viewer.getByRole("heading", { name: "Plugin installations" }).waitFor();
  assert.equal(await viewer.getByRole("button", { name: /Disable|Enable/ }).count(), 0);
  step("the viewer sees no deploy or roll back button, posting the form directly gets 403, and another app is neither listed nor readable");
  await viewing.close();
  console.log("all browser checks passed");
} finally {
  await browser.close();
}
