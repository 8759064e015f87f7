import { expect, test } from "@playwright/test";
import { ADMIN, setupLinkFromLog } from "./admin-support";

test("setup link creates the first admin once", async ({ page }) => {
  // Before any admin exists, the sign-in page explains how to create one.
  await page.goto("/console");
  await expect(page).toHaveURL(/\/console\/sign-in/);
  await expect(page.getByRole("heading", { name: "No admin exists yet" })).toBeVisible();

  const link = setupLinkFromLog();
  await page.goto(link);
  await page.getByLabel("User name").fill(ADMIN.username);
  await page.getByLabel("Password (at least 12 characters)").fill(ADMIN.password);
  await page.getByLabel("Confirm password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Create admin" }).click();
  await expect(page).toHaveURL(/\/console$/);
  await expect(page.getByText(`Signed in as ${ADMIN.username}`)).toBeVisible();
  await page.context().storageState({ path: process.env.LATCH_E2E_ADMIN_STATE! });

  // The link died with the admin it created.
  const again = await page.goto(link);
  expect(again?.status()).toBe(410);
  await expect(page.getByRole("heading", { name: "This setup link is not valid" })).toBeVisible();
  await expect(page.getByLabel("User name")).toHaveCount(0);
});
