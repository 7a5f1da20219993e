/**
 * The status page in headless Chromium (Debian's, driven by playwright-core), against the built
 * daemon while events flow and while a sink's broker is down:
 * - the numbers move without a reload (delivered count and rate between two looks);
 * - a sink going down shows on its route (card degraded, sink chip down, connectors table), and
 *   coming back shows too; the other route keeps moving;
 * - usable at 1280×800 (the cards sit side by side, nothing overflows) and at a phone's 390×844
 *   (one column, no horizontal scrolling);
 * - it asks for nothing but its own origin, and no secret of the config reaches it.
 *
 * Screenshots of each state are written to a temporary directory; with
 * CEBRIDGE_UPDATE_SCREENSHOTS=1 they replace the committed ones in test/e2e/status-page/.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { launchChromium } from "../support/browser.js";
import { startMosquitto } from "../support/brokers.js";
import { startReceiver } from "../support/counting.js";
import { REPO_ROOT, startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const SHOTS = process.env["CEBRIDGE_UPDATE_SCREENSHOTS"] === "1" ? join(REPO_ROOT, "test", "e2e", "status-page") : mkdtempSync(join(tmpdir(), "cebridge-shots-"));
const SECRET = "tok-7f3a9c21e8b4";

/** Posts events to `port` until stopped; failures are simply counted (the sink may be down). */
function load(port: number, tag: string, token?: string): { stop(): Promise<void>; sent: number } {
  let stopped = false;
  const state = { sent: 0, stop: async () => {} };
  const loop = (async () => {
    let i = 0;
    while (!stopped) {
      const headers: Record<string, string> = { "content-type": "application/cloudevents+json" };
      if (token) headers["authorization"] = `Bearer ${token}`;
      await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers,
        body: JSON.stringify({ specversion: "1.0", id: `${tag}-${i++}`, source: "urn:page", type: "dev.cebridge.page", data: { i } }),
        signal: AbortSignal.timeout(3000),
      })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
      state.sent++;
      await sleep(15);
    }
  })();
  state.stop = async () => {
    stopped = true;
    await loop;
  };
  return state;
}

async function num(page: Page, route: string, field: string): Promise<number> {
  const text = (await page.locator(`[data-route="${route}"] [data-field="${field}"]`).first().textContent()) ?? "";
  const m = /^([\d.]+)(k|M)?/.exec(text.trim());
  assert.ok(m, `${route} ${field}: "${text}"`);
  return Number(m[1]) * (m[2] === "k" ? 1e3 : m[2] === "M" ? 1e6 : 1);
}

async function noHorizontalOverflow(page: Page): Promise<void> {
  // Runs in the page (this project compiles without the DOM library, hence the casts).
  const { scroll, width } = await page.evaluate(() => {
    const w = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
    return { scroll: w.document.documentElement.scrollWidth, width: w.innerWidth };
  });
  assert.ok(scroll <= width, `page is ${scroll}px wide in a ${width}px viewport`);
}

describe("status page", { timeout: 150_000 }, () => {
  test("status page - numbers move while events flow, a sink going down shows, usable at 1280×800 and on a phone", async () => {
    mkdirSync(SHOTS, { recursive: true });
    const mqtt = await startMosquitto();
    cleanups.push(() => mqtt.close());
    const rx = await startReceiver({ delayMs: 2 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const ordersPort = await freePort();
    const auditPort = await freePort();
    const dl = join(mkdtempSync(join(tmpdir(), "cebridge-page-")), "dead.jsonl");
    const daemon = startDaemon(`
engine: { instance_id: page-demo, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  orders_in: { type: http, listen: "127.0.0.1:${ordersPort}", path: / }
  audit_in: { type: http, listen: "127.0.0.1:${auditPort}", path: /, auth: { bearer: "${SECRET}" } }
sinks:
  bus: { type: mqtt, url: "${mqtt.url}", topic: "orders/{type}", protocol_version: 5 }
  audit: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes:
  - { name: orders-to-mqtt, from: orders_in, to: [bus], dead_letter: dlq, retry: { initial: 50ms, max: 200ms, max_elapsed: 500ms }, timeout: 1s }
  - { name: audit-to-http, from: audit_in, to: [audit], dead_letter: dlq }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);
    const orders = load(ordersPort, "o");
    const audit = load(auditPort, "a", SECRET);
    cleanups.push(() => orders.stop(), () => audit.stop());

    const chromium = await launchChromium();
    cleanups.push(() => chromium.close());
    const page = await chromium.page({ width: 1280, height: 800 });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`http://${admin}/`);

    // Events flow: the counters and the rate move between two looks, without a reload.
    await page.locator('[data-route="orders-to-mqtt"] [data-state="ok"]').waitFor({ timeout: 10_000 });
    await waitFor(async () => (await num(page, "orders-to-mqtt", "rate-out")) > 0, 10_000, "a rate shows");
    const d1 = await num(page, "orders-to-mqtt", "delivered");
    const a1 = await num(page, "audit-to-http", "delivered");
    await sleep(2500);
    const d2 = await num(page, "orders-to-mqtt", "delivered");
    const a2 = await num(page, "audit-to-http", "delivered");
    assert.ok(d2 > d1 && a2 > a1, `delivered moved: orders ${d1} → ${d2}, audit ${a1} → ${a2}`);
    assert.equal(await page.locator('[data-component="sink:bus"][data-health="up"]').count(), 1);
    assert.match((await page.locator("#generation").textContent())!, /^config #1 loaded /);
    const cards = await page.locator("[data-route]").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().top));
    assert.equal(cards.length, 2);
    assert.equal(cards[0], cards[1], "at 1280 px the route cards sit side by side");
    await noHorizontalOverflow(page);
    await page.screenshot({ path: join(SHOTS, "flowing-1280x800.png") });

    // The MQTT broker goes down: its route is degraded, the sink is down, the other route keeps moving.
    await mqtt.stop();
    await page.locator('[data-route="orders-to-mqtt"] [data-state="degraded"]').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-route="orders-to-mqtt"] [data-component="sink:bus"][data-health="down"]').count(), 1);
    assert.match((await page.locator('[data-route="orders-to-mqtt"] [data-state="degraded"]').textContent())!, /down: sink bus/);
    assert.match((await page.locator('tr[data-component="sink:bus"]').textContent())!, /down/);
    await waitFor(async () => (await num(page, "orders-to-mqtt", "failed")) > 0, 20_000, "failures counted while the sink is down");
    await waitFor(async () => (await page.locator("#errors tr").count()) > 0, 10_000, "recent errors listed");
    const a3 = await num(page, "audit-to-http", "delivered");
    await sleep(1500);
    assert.ok((await num(page, "audit-to-http", "delivered")) > a3, "the healthy route keeps moving");
    assert.equal(await page.locator('[data-route="audit-to-http"] [data-state="ok"]').count(), 1);
    await page.screenshot({ path: join(SHOTS, "sink-down-1280x800.png") });

    const phone = await chromium.page({ width: 390, height: 844 });
    await phone.goto(`http://${admin}/`);
    await phone.locator('[data-route="orders-to-mqtt"] [data-state="degraded"]').waitFor({ timeout: 10_000 });
    await waitFor(async () => (await num(phone, "audit-to-http", "rate-out")) > 0, 10_000, "rates on the phone too");
    await noHorizontalOverflow(phone);
    const boxes = await phone.locator("[data-route]").evaluateAll((els) => els.map((e) => ({ left: e.getBoundingClientRect().left, width: e.getBoundingClientRect().width })));
    assert.ok(boxes.every((b) => b.width <= 390 && b.width > 300), `one column of full-width cards: ${JSON.stringify(boxes)}`);
    await phone.screenshot({ path: join(SHOTS, "sink-down-phone-390x844.png") });
    await phone.screenshot({ path: join(SHOTS, "sink-down-phone-390x844-full.png"), fullPage: true });

    // The broker is back: so is the sink.
    await mqtt.restart();
    await page.locator('[data-route="orders-to-mqtt"] [data-component="sink:bus"][data-health="up"]').waitFor({ timeout: 30_000 });

    const html = await page.content();
    assert.ok(!html.includes(SECRET), "no secret on the page");
    const foreign = requests.filter((u) => !u.startsWith(`http://${admin}/`));
    assert.deepEqual(foreign, [], "the page fetches nothing but its own origin");
    assert.ok(requests.filter((u) => u.endsWith("/status")).length >= 5, "it polls /status");
    assert.deepEqual(problems, []);
    await orders.stop();
    await audit.stop();
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
