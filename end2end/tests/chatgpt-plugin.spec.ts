import { expect, test } from "@playwright/test";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createPublicKey, randomBytes, verify, type JsonWebKey } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

// The journey ChatGPT drives for a plugin: its exact authorization request
// (empty scope, no PKCE), a new user registering in Chromium, then the
// server-to-server JSON token requests with the secret in the body.

const base = process.env.LATCH_E2E_BASE_URL!;
const issuer = `${base}/oidc`;

type Created = { app_id: string; app_secret: string };

function createApplication(redirectUri: string): Created {
  const output = execFileSync(
    process.env.LATCH_BIN!,
    [
      "--data-dir",
      process.env.LATCH_E2E_DATA_DIR!,
      "app",
      "create",
      "--name",
      "Forecast plugin",
      "--redirect-uri",
      redirectUri,
      "--always-issue-refresh-token",
      "--json",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  return JSON.parse(output);
}

/** A local stand-in for ChatGPT's callback page. */
async function startCallback(): Promise<{ server: Server; url: string }> {
  const server = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/plain" });
    response.end("callback reached");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/aip/plugin-e2e/oauth/callback` };
}

async function startPluginApi(audience: string): Promise<{ child: ChildProcess; url: string }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(
    process.env.LATCH_PLUGIN_API_BIN ?? "../target/debug/examples/plugin_api",
    ["--issuer", issuer, "--audience", audience, "--listen", `127.0.0.1:${port}`],
    { stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await fetch(`${url}/whoami`);
      return { child, url };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  child.kill();
  throw new Error("the example plugin API did not start");
}

function decodePart(part: string) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** Verifies a JWT's signature against the server's JWKS with Node's crypto. */
async function verifyAgainstJwks(token: string) {
  const [headerPart, payloadPart, signaturePart] = token.split(".");
  const header = decodePart(headerPart);
  const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: Array<JsonWebKey & { kid: string }> };
  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  expect(jwk, `JWKS publishes key ${header.kid}`).toBeTruthy();
  const key = createPublicKey({ key: jwk!, format: "jwk" });
  const signed = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, "base64url");
  const valid =
    header.alg === "ES256"
      ? verify("sha256", signed, { key, dsaEncoding: "ieee-p1363" }, signature)
      : verify("sha256", signed, key, signature);
  expect(valid, "signature verifies").toBe(true);
  return { header, claims: decodePart(payloadPart) };
}

async function tokenRequest(body: Record<string, string>) {
  const response = await fetch(`${issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

test("ChatGPT plugin journey: register, exchange, verify, call, refresh", async ({ page }) => {
  const callback = await startCallback();
  const app = createApplication(callback.url);
  const api = await startPluginApi(app.app_id);
  try {
    // ChatGPT's authorization request, byte for byte in shape.
    const state = `st/+ =&~${randomBytes(6).toString("hex")}`;
    const query = new URLSearchParams({
      response_type: "code",
      client_id: app.app_id,
      scope: "",
      state,
      redirect_uri: callback.url,
    });
    await page.goto(`${issuer}/auth?${query}`);
    await expect(page.getByText("Forecast plugin").first()).toBeVisible();

    // A new user registers on the sign-in page.
    await page.getByRole("link", { name: "Create one" }).click();
    const username = `e2e-${randomBytes(4).toString("hex")}`;
    await page.getByLabel("User name", { exact: true }).fill(username);
    await page.getByLabel("Password (at least 8 characters)").fill("correct horse battery");
    await page.getByLabel("Confirm password").fill("correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();

    // The browser lands on the callback with a code, the same state and iss.
    await page.waitForURL((url) => url.href.startsWith(callback.url));
    const landed = new URL(page.url());
    const code = landed.searchParams.get("code");
    expect(code).toBeTruthy();
    expect(landed.searchParams.get("state")).toBe(state);
    expect(landed.searchParams.get("iss")).toBe(issuer);
    await expect(page.getByText("callback reached")).toBeVisible();

    // ChatGPT's token request: JSON, secret in the body.
    const exchanged = await tokenRequest({
      grant_type: "authorization_code",
      client_id: app.app_id,
      client_secret: app.app_secret,
      code: code!,
      redirect_uri: callback.url,
    });
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers.get("cache-control")).toContain("no-store");
    expect(exchanged.body.token_type.toLowerCase()).toBe("bearer");
    expect(exchanged.body.expires_in).toBeGreaterThan(0);
    expect(exchanged.body.refresh_token).toBeTruthy();

    // The access token is a JWT the plugin's API can check offline.
    const { header, claims } = await verifyAgainstJwks(exchanged.body.access_token);
    expect(header.typ).toBe("at+jwt");
    expect(claims.iss).toBe(issuer);
    expect(claims.aud === app.app_id || (Array.isArray(claims.aud) && claims.aud.includes(app.app_id))).toBe(true);
    expect(claims.client_id).toBe(app.app_id);
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000);

    // The example plugin API accepts it and names the caller.
    const whoami = await fetch(`${api.url}/whoami`, {
      headers: { authorization: `Bearer ${exchanged.body.access_token}` },
    });
    expect(whoami.status).toBe(200);
    expect((await whoami.json()).sub).toBe(claims.sub);
    const anonymous = await fetch(`${api.url}/whoami`);
    expect(anonymous.status).toBe(401);

    // Refresh with a JSON body; rotation hands out a new refresh token.
    const first = exchanged.body.refresh_token as string;
    const refreshed = await tokenRequest({
      grant_type: "refresh_token",
      client_id: app.app_id,
      client_secret: app.app_secret,
      refresh_token: first,
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).toBeTruthy();
    expect(refreshed.body.refresh_token).not.toBe(first);
    await verifyAgainstJwks(refreshed.body.access_token);

    // Once the new token has been used, the old one is refused.
    const second = await tokenRequest({
      grant_type: "refresh_token",
      client_id: app.app_id,
      client_secret: app.app_secret,
      refresh_token: refreshed.body.refresh_token,
    });
    expect(second.status).toBe(200);
    const replay = await tokenRequest({
      grant_type: "refresh_token",
      client_id: app.app_id,
      client_secret: app.app_secret,
      refresh_token: first,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
  } finally {
    api.child.kill();
    callback.server.close();
  }
});
