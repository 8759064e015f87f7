import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// One Latch server for the whole run, on its own port and its own SQLite
// file. LATCH_BIN and LATCH_SITE_ROOT are set by scripts/test.
const port = Number(process.env.LATCH_E2E_PORT ?? 3117);
// Workers load this file again; they inherit the folder through the
// environment instead of making a new one.
const dataDir = process.env.LATCH_E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), "latch-e2e-"));
const bin = process.env.LATCH_BIN ?? "../target/debug/latch";
const siteRoot = process.env.LATCH_SITE_ROOT ?? "../target/site";

// Journeys that need the server's own data (the CLI, the example plugin
// API) read these.
process.env.LATCH_E2E_DATA_DIR = dataDir;
process.env.LATCH_E2E_BASE_URL = `http://127.0.0.1:${port}`;
process.env.LATCH_BIN = bin;
// The server's log, where the first-admin setup link appears.
process.env.LATCH_E2E_LOG = join(dataDir, "latch.log");
// Signed-in console state that the setup project saves for the others.
const adminState = join(dataDir, "admin-state.json");
process.env.LATCH_E2E_ADMIN_STATE = adminState;

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // The custom domain is a server-wide setting, so journeys run one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: [["list"]],
  projects: [
    // Creates the first admin through the setup link and saves the
    // signed-in browser state that every other journey starts from.
    { name: "setup", testMatch: /admin\.setup\.ts/ },
    {
      name: "console",
      testIgnore: /admin\.setup\.ts/,
      dependencies: ["setup"],
      use: { storageState: adminState },
    },
  ],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `exec ${bin} --listen 127.0.0.1:${port} --data-dir ${dataDir} --site-root ${siteRoot} 2> ${process.env.LATCH_E2E_LOG}`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
  },
});
