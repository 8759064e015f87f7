import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { ADMIN, signIn } from "./admin-support";

// Console access: sign-in, sign-out, and the wall between end users and
// the console. Each journey starts from an empty browser, without the
// admin state that the other journeys share.
test.use({ storageState: { cookies: [], origins: [] } });

test("the console sends a visitor to the admin sign-in", async ({ page }) => {
  await page.goto("/console/settings");
  await expect(page).toHaveURL(/\/console\/sign-in\?next=%2Fconsole%2Fsettings$/);
  await expect(page.getByRole("heading", { name: "Sign in to the Latch console" })).toBeVisible();

  // A wrong password is refused without saying whether the name exists.
  await page.getByLabel("User name").fill(ADMIN.username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("The user name or password is incorrect.");

  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/console\/settings$/);
  await expect(page.getByText(`Signed in as ${ADMIN.username}`)).toBeVisible();
});

test("a signed-in end user is sent to the admin sign-in", async ({ page }) => {
  // An application whose sign-in page an end user goes through.
  const callback = "http://127.0.0.1:9/callback";
  const created = JSON.parse(
    execFileSync(
      process.env.LATCH_BIN!,
      ["--data-dir", process.env.LATCH_E2E_DATA_DIR!, "app", "create", "--name", "Wall test", "--redirect-uri", callback, "--json"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    ),
  );
  const query = new URLSearchParams({
    response_type: "code",
    client_id: created.app_id,
    redirect_uri: callback,
    scope: "openid",
    state: "wall",
  });
  await page.goto(`/oidc/auth?${query}`);
  await page.getByRole("link", { name: "Create one" }).click();
  const user = `wall-${Date.now()}`;
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password (at least 8 characters)").fill("end user password");
  await page.getByLabel("Confirm password").fill("end user password");
  // The browser stands in for the application's callback page.
  await page.route(`${callback}**`, (route) => route.fulfill({ status: 200, body: "callback reached" }));
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL((url) => url.href.startsWith(callback));
  const cookies = await page.context().cookies();
  expect(cookies.map((cookie) => cookie.name)).toContain("latch_session");

  const response = await page.goto("/console");
  await expect(page).toHaveURL(/\/console\/sign-in/);
  expect(response?.status()).toBe(200);
  await expect(page.getByText(user)).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Sign in to the Latch console" })).toBeVisible();
});

test("after sign-out the back button shows nothing private", async ({ page }) => {
  await signIn(page);
  await page.getByLabel("Name").fill("Back button plugin");
  await page.getByRole("button", { name: "Create application" }).click();
  await page.waitForURL(/\/console\/applications\/[0-9a-z]{21}$/);
  const appId = page.url().split("/").pop()!;
  await expect(page.getByText(appId).first()).toBeVisible();

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/console\/sign-in\?signed_out$/);
  await expect(page.getByText("You are signed out.")).toBeVisible();

  await page.goBack();
  await expect(page).toHaveURL(/\/console\/sign-in/);
  await expect(page.getByText(appId)).toHaveCount(0);
  await expect(page.getByText("Back button plugin")).toHaveCount(0);

  // The old session is gone on the server too.
  const api = await page.request.post("/api/list_applications", {
    headers: { origin: new URL(page.url()).origin },
  });
  expect(api.status()).toBe(401);
});

test("console pages hydrate under their Content-Security-Policy", async ({ page }) => {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await signIn(page);
  const response = await page.goto("/console");
  const policy = response?.headers()["content-security-policy"] ?? "";
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+'/);
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
  expect(violations).toEqual([]);
});
