import { expect, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";

/** The first admin, created through the setup link by admin.setup.ts. */
export const ADMIN = { username: "e2e-admin", password: "e2e admin password" };

/** Returns the setup link that the server wrote to its log at start-up. */
export function setupLinkFromLog(): string {
  const log = readFileSync(process.env.LATCH_E2E_LOG!, "utf8");
  const match = log.match(/https?:\/\/\S+\/console\/setup\?token=[A-Za-z0-9_-]+/);
  if (!match) throw new Error(`no setup link in the server log:\n${log}`);
  return match[0];
}

/** Signs in through the console sign-in form. */
export async function signIn(page: Page, next = "/console") {
  await page.goto(next);
  await expect(page).toHaveURL(/\/console\/sign-in/);
  await page.getByLabel("User name").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText(`Signed in as ${ADMIN.username}`)).toBeVisible();
}
