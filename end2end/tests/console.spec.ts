import { expect, test, type Page } from "@playwright/test";

const PLACEHOLDER = "https://chat.openai.com/aip/[your-plugin-id]/oauth/callback";
const CALLBACK = "https://chatgpt.com/aip/g-e2e123/oauth/callback";

async function waitForHydration(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function createApplication(page: Page, name: string): Promise<string> {
  await page.goto("/console");
  await waitForHydration(page);
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create application" }).click();
  await page.waitForURL(/\/console\/applications\/[0-9a-z]{21}$/);
  await waitForHydration(page);
  return page.url().split("/").pop()!;
}

function manifestJson(page: Page) {
  return page.getByTestId("plugin-auth-json");
}

test("guide journey with JavaScript", async ({ page, context }) => {
  const appId = await createApplication(page, "E2E weather plugin");
  await expect(page.getByRole("heading", { name: "E2E weather plugin" })).toBeVisible();

  // The placeholder is shown while nothing is saved, and Save waits for a change.
  const firstUri = page.getByLabel("Redirect URI 1", { exact: true });
  await expect(firstUri).toHaveValue(PLACEHOLDER);
  const save = page.getByRole("button", { name: "Save redirect URIs" });
  await expect(save).toBeDisabled();

  // A real callback saved with Enter survives a reload.
  await firstUri.fill(CALLBACK);
  await expect(save).toBeEnabled();
  await firstUri.press("Enter");
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  await page.reload();
  await waitForHydration(page);
  await expect(page.getByLabel("Redirect URI 1", { exact: true })).toHaveValue(CALLBACK);

  // Each invalid value gets its own error and nothing is saved.
  const invalid: Array<[string, RegExp]> = [
    [PLACEHOLDER, /placeholder/],
    ["javascript:alert(1)", /javascript: scheme is not allowed/],
    ["https://chatgpt.com/aip/g-e2e123/oauth/callback#frag", /fragment/],
  ];
  for (const [value, message] of invalid) {
    const field = page.getByLabel("Redirect URI 1", { exact: true });
    await field.fill(value);
    await page.getByRole("button", { name: "Save redirect URIs" }).click();
    await expect(page.getByText(message).first()).toBeVisible();
    await expect(field).toHaveAttribute("aria-invalid", "true");
    await page.reload();
    await waitForHydration(page);
    await expect(page.getByLabel("Redirect URI 1", { exact: true })).toHaveValue(CALLBACK);
  }

  // The switch saves at once and keeps its state across a reload.
  const toggle = page.getByRole("switch", { name: "Always issue refresh token" });
  await expect(toggle).toHaveAttribute("aria-checked", "false");
  const saved = page.waitForResponse((r) => r.url().includes("/api/set_always_issue_refresh_token"));
  await toggle.click();
  expect((await saved).status()).toBe(200);
  await expect(toggle).toHaveAttribute("aria-checked", "true");
  await page.reload();
  await waitForHydration(page);
  await expect(page.getByRole("switch", { name: "Always issue refresh token" })).toHaveAttribute(
    "aria-checked",
    "true",
  );

  // The copy button really writes the App ID to the clipboard.
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await expect(page.getByLabel("App ID", { exact: true })).toHaveValue(appId);
  await page.getByRole("button", { name: "Copy App ID" }).click();
  await expect(page.getByRole("button", { name: "Copy App ID" })).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(appId);

  // The secret is masked until shown.
  const secret = page.getByLabel("App Secret", { exact: true });
  await expect(secret).toHaveAttribute("type", "password");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await expect(secret).toHaveAttribute("type", "text");
  expect(await secret.inputValue()).toMatch(/^[0-9a-zA-Z]{32}$/);

  // A pasted verification token appears in valid JSON at once and is kept.
  await page.getByLabel("OpenAI verification token").fill("openai-verify-e2e-42");
  const parsed = JSON.parse((await manifestJson(page).textContent()) ?? "");
  expect(parsed.auth.verification_tokens.openai).toBe("openai-verify-e2e-42");
  expect(parsed.auth.type).toBe("oauth");
  expect(parsed.auth.client_url).toMatch(/\/oidc\/auth$/);
  expect(parsed.auth.authorization_url).toMatch(/\/oidc\/token$/);
  expect(parsed.auth.authorization_content_type).toBe("application/json");
  await page.getByRole("button", { name: "Save manifest settings" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." }).first()).toBeVisible();
  await page.reload();
  await waitForHydration(page);
  const reloaded = JSON.parse((await manifestJson(page).textContent()) ?? "");
  expect(reloaded.auth.verification_tokens.openai).toBe("openai-verify-e2e-42");

  // A custom domain shows the notice and moves every URL in the JSON.
  await page.goto("/console/settings");
  await waitForHydration(page);
  await page.getByRole("textbox", { name: "Custom domain" }).fill("auth.e2e.example.com");
  await page.getByRole("button", { name: "Save domain" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  await page.goto(`/console/applications/${appId}`);
  await waitForHydration(page);
  await expect(page.getByRole("note", { name: "Custom domain" })).toBeVisible();
  const onDomain = JSON.parse((await manifestJson(page).textContent()) ?? "");
  expect(onDomain.auth.client_url).toBe("https://auth.e2e.example.com/oidc/auth");
  expect(onDomain.auth.authorization_url).toBe("https://auth.e2e.example.com/oidc/token");

  // Clear the domain again for the other journeys.
  await page.goto("/console/settings");
  await waitForHydration(page);
  await page.getByRole("textbox", { name: "Custom domain" }).fill("");
  await page.getByRole("button", { name: "Save domain" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
});

test("plugin ID builds both ChatGPT callbacks", async ({ page }) => {
  await createApplication(page, "E2E callback builder");
  await page.getByLabel("Build the callbacks from your plugin or GPT ID").fill("g-builder1");
  await page.getByRole("button", { name: "Use this ID" }).click();
  await expect(page.getByLabel("Redirect URI 1", { exact: true })).toHaveValue(
    "https://chat.openai.com/aip/g-builder1/oauth/callback",
  );
  await expect(page.getByLabel("Redirect URI 2", { exact: true })).toHaveValue(
    "https://chatgpt.com/aip/g-builder1/oauth/callback",
  );
  await page.getByRole("button", { name: "Save redirect URIs" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  await page.reload();
  await expect(page.getByLabel("Redirect URI 2", { exact: true })).toHaveValue(
    "https://chatgpt.com/aip/g-builder1/oauth/callback",
  );
});

test("delete asks for confirmation", async ({ page }) => {
  const appId = await createApplication(page, "E2E to delete");
  await page.goto("/console");
  await waitForHydration(page);
  const row = page.getByRole("listitem").filter({ hasText: appId });
  await row.getByText("Delete", { exact: true }).click();
  await row.getByRole("button", { name: "Delete for good" }).click();
  await expect(page.getByRole("listitem").filter({ hasText: appId })).toHaveCount(0);
  await page.reload();
  await expect(page.getByText(appId)).toHaveCount(0);
});

test("switch flips back and explains a failed save", async ({ page }) => {
  const appId = await createApplication(page, "E2E vanishing plugin");
  // Another operator deletes the application while this page is open.
  const deleted = await page.request.post("/api/delete_application", {
    form: { id: appId },
    headers: { origin: new URL(page.url()).origin },
    maxRedirects: 0,
  });
  expect(deleted.status()).toBeLessThan(400);

  const toggle = page.getByRole("switch", { name: "Always issue refresh token" });
  await expect(toggle).toHaveAttribute("aria-checked", "false");
  await toggle.click();
  await expect(page.getByRole("alert").filter({ hasText: "The change was not saved" })).toBeVisible();
  await expect(toggle).toHaveAttribute("aria-checked", "false");
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("a rejected form comes back with its reason", async ({ page }) => {
    await page.goto("/console");
    await page.getByLabel("Name").fill("E2E no-script errors");
    await page.getByRole("button", { name: "Create application" }).click();
    await page.waitForURL(/\/console\/applications\/[0-9a-z]{21}$/);
    await page.getByLabel("Redirect URI 1", { exact: true }).fill("javascript:alert(1)");
    await page.getByRole("button", { name: "Save redirect URIs" }).click();
    await page.waitForURL(/\?error=/);
    await expect(page.getByRole("alert").filter({ hasText: "javascript: scheme is not allowed" })).toBeVisible();
    await expect(page.getByRole("heading", { name: "E2E no-script errors" })).toBeVisible();
  });

  test("forms still submit", async ({ page }) => {
    await page.goto("/console");
    await page.getByLabel("Name").fill("E2E no-script plugin");
    await page.getByRole("button", { name: "Create application" }).click();
    await page.waitForURL(/\/console\/applications\/[0-9a-z]{21}$/);
    await expect(page.getByRole("heading", { name: "E2E no-script plugin" })).toBeVisible();

    await page.getByLabel("Redirect URI 1", { exact: true }).fill(CALLBACK);
    await page.getByRole("button", { name: "Save redirect URIs" }).click();
    await page.waitForLoadState("load");
    await page.reload();
    await expect(page.getByLabel("Redirect URI 1", { exact: true })).toHaveValue(CALLBACK);

    await page.getByRole("switch", { name: "Always issue refresh token" }).click();
    await page.waitForLoadState("load");
    await page.reload();
    await expect(page.getByRole("switch", { name: "Always issue refresh token" })).toHaveAttribute(
      "aria-checked",
      "true",
    );
  });
});
