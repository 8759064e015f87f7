import { expect, test, type Page } from "@playwright/test";

// Rotating a client secret from the guide: add a second secret, copy it,
// delete the old one, and keep a secret on show throughout.

async function waitForHydration(page: Page) {
  await page.locator("body[data-hydrated]").waitFor({ state: "attached" });
}

async function createApplication(page: Page, name: string): Promise<string> {
  await page.goto("/console");
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create application" }).click();
  await page.waitForURL(/\/console\/applications\/[0-9a-z]{21}$/);
  return page.url().split("/").pop()!;
}

function secretList(page: Page) {
  return page.getByRole("region", { name: "Client secrets" }).getByRole("listitem");
}

test("rotate a secret with JavaScript", async ({ page, context }) => {
  await createApplication(page, "E2E secret rotation");
  await waitForHydration(page);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const rows = secretList(page);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Default");
  await expect(rows.first()).toContainText("never expires");
  const oldValue = await page.getByLabel("Value of secret Default").inputValue();
  await expect(page.getByLabel("App Secret", { exact: true })).toHaveValue(oldValue);
  await expect(rows.first()).toContainText("Add another secret before deleting this one.");

  // A named secret with an expiry date joins the list.
  await page.getByLabel("Secret name").fill("E2E rotation");
  await page.getByLabel("Expires on (optional)").fill("2099-06-30");
  await page.getByRole("button", { name: "Add secret" }).click();
  await page.waitForURL(/\?added=[0-9a-z]{21}#client-secrets$/);
  await waitForHydration(page);
  await expect(page.getByRole("status").filter({ hasText: "Added E2E rotation." })).toBeVisible();
  await expect(rows).toHaveCount(2);
  const newRow = rows.filter({ hasText: "E2E rotation" });
  await expect(newRow).toContainText("expires on 2099-06-30");

  // Show reveals the new value and Copy puts it on the clipboard.
  const newField = page.getByLabel("Value of secret E2E rotation");
  await expect(newField).toHaveAttribute("type", "password");
  await newRow.getByRole("button", { name: "Show secret E2E rotation" }).click();
  await expect(newField).toHaveAttribute("type", "text");
  const newValue = await newField.inputValue();
  expect(newValue).toMatch(/^[0-9a-zA-Z]{32}$/);
  expect(newValue).not.toBe(oldValue);
  const copy = newRow.getByRole("button", { name: "Copy secret E2E rotation" });
  await copy.click();
  await expect(copy).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(newValue);

  // The old secret goes only after the confirmation.
  const oldRow = rows.filter({ hasText: "Default" });
  const confirm = oldRow.getByRole("button", { name: "Delete secret" });
  await expect(confirm).toBeHidden();
  await oldRow.getByText("Delete", { exact: true }).click();
  await confirm.click();
  await page.waitForURL(/\?deleted=[0-9a-z]{21}#client-secrets$/);
  await waitForHydration(page);
  await expect(page.getByRole("status").filter({ hasText: "Secret deleted." })).toBeVisible();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("E2E rotation");

  // The guide still offers a secret to copy: the new one.
  const appSecret = page.getByLabel("App Secret", { exact: true });
  await expect(appSecret).toHaveValue(newValue);
  await page.getByRole("button", { name: "Copy App Secret" }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(newValue);
  await expect(rows.first().getByText("Delete", { exact: true })).toHaveCount(0);
});

test("a duplicate name is rejected in place", async ({ page }) => {
  await createApplication(page, "E2E duplicate secret");
  await waitForHydration(page);
  await page.getByLabel("Secret name").fill("default");
  await page.getByRole("button", { name: "Add secret" }).click();
  await expect(
    page.getByRole("alert").filter({ hasText: 'already has a secret named "default"' }),
  ).toBeVisible();
  await page.reload();
  await expect(secretList(page)).toHaveCount(1);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("secret forms post and come back to the list", async ({ page }) => {
    await createApplication(page, "E2E no-script secrets");
    const rows = secretList(page);
    await expect(rows).toHaveCount(1);

    await page.getByLabel("Secret name").fill("No-script rotation");
    await page.getByRole("button", { name: "Add secret" }).click();
    await page.waitForURL(/\?added=[0-9a-z]{21}#client-secrets$/);
    await expect(page.getByText("Added No-script rotation.")).toBeVisible();
    await expect(rows).toHaveCount(2);
    const newValue = await page.getByLabel("Value of secret No-script rotation").inputValue();

    const oldRow = rows.filter({ hasText: "Default" });
    await oldRow.getByText("Delete", { exact: true }).click();
    await oldRow.getByRole("button", { name: "Delete secret" }).click();
    await page.waitForURL(/\?deleted=[0-9a-z]{21}#client-secrets$/);
    await expect(rows).toHaveCount(1);
    await expect(page.getByLabel("App Secret", { exact: true })).toHaveValue(newValue);
  });
});
