// The playground page (GET /) in a real browser: Debian's headless Chromium
// driven by puppeteer-core. Types a prompt, sets greedy sampling, presses
// Generate and checks the streamed text equals the gRPC greedy text; then
// Ctrl+Enter, Stop, and the log-prob tooltip on hover. With a second
// argument, saves a screenshot there.
// Usage: node playground_test.cjs BUILD_DIR [SCREENSHOT.png]
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { requireNpm, startServer, run, assertEqual } = require("./server_fixture.cjs");
const puppeteer = requireNpm("puppeteer-core");

const chromium = "/usr/bin/chromium";

async function setValue(page, selector, value) {
  await page.$eval(selector, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

async function typeInto(page, selector, text) {
  await page.focus(selector);
  await page.keyboard.down("Control");
  await page.keyboard.press("KeyA");
  await page.keyboard.up("Control");
  await page.keyboard.press("Backspace");
  await page.keyboard.type(text);
}

async function waitState(page, states, timeout = 120000) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), { timeout }, states);
  return page.evaluate(() => document.body.dataset.state);
}

run(async () => {
  if (!fs.existsSync(chromium)) {
    console.log(`SKIP: ${chromium} missing (Debian package chromium; tools/install_deps.sh)`);
    process.exit(77);
  }
  const server = await startServer(process.argv[2]);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "lstmserve-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1180, height: 760 });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(server.baseUrl + "/", { waitUntil: "load" });
    await page.waitForFunction(() => document.body.dataset.models === "1", { timeout: 30000 });
    assertEqual(await page.$eval("#model", (el) => el.value), server.model, "model picker");

    // Greedy, typed in, Generate clicked: the streamed text is gRPC's.
    const prompt = "JULIET:\n";
    const expected = server.grpcGreedy(prompt, 120);
    await setValue(page, "#temperature", "0");
    await typeInto(page, "#max_tokens", "120");
    await typeInto(page, "#prompt", prompt);
    await page.click("#generate");
    assertEqual(await waitState(page, ["done", "error"]), "done", "state after Generate");
    const completion = await page.$eval("#output", (el) => el.dataset.completion);
    assertEqual(completion, expected, "streamed text vs gRPC greedy text");
    const shown = await page.$eval("#output", (el) => el.textContent);
    assertEqual(shown, prompt + expected, "text on the page");
    assertEqual(await page.$eval("#ntok", (el) => el.textContent), "120", "token count");
    const ttft = await page.$eval("#ttft", (el) => el.textContent);
    if (!/^\d+ ms$/.test(ttft)) throw new Error("time to first token not shown: " + ttft);
    if (!/^\d+(\.\d+)?$/.test(await page.$eval("#tps", (el) => el.textContent))) {
      throw new Error("tokens/s not shown");
    }

    // The keyboard: Ctrl+Enter generates again, the same text.
    await page.evaluate(() => { document.body.dataset.state = "idle"; });
    await page.focus("#prompt");
    await page.keyboard.down("Control");
    await page.keyboard.press("Enter");
    await page.keyboard.up("Control");
    assertEqual(await waitState(page, ["done", "error"]), "done", "state after Ctrl+Enter");
    assertEqual(await page.$eval("#output", (el) => el.dataset.completion), expected,
                "Ctrl+Enter text");

    // Hover a token: its log-probability and alternatives.
    const token = await page.$("#output .tok");
    const box = await token.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const tip = await page.$eval("#tip", (el) => ({ shown: el.style.display, text: el.textContent }));
    assertEqual(tip.shown, "block", "tooltip shown");
    if (!/logprob -?\d/.test(tip.text)) throw new Error("tooltip without logprob: " + tip.text);

    // Stop cancels a long generation.
    await typeInto(page, "#max_tokens", "4000");
    await page.click("#generate");
    await page.waitForFunction(() => (document.querySelector("#output").textContent || "").length > 30,
                               { timeout: 60000 });
    await page.click("#stop-button");
    assertEqual(await waitState(page, ["stopped", "done", "error"]), "stopped", "state after Stop");

    if (process.argv[3]) {
      await setValue(page, "#temperature", "0.8");
      await typeInto(page, "#seed", "7");
      await typeInto(page, "#max_tokens", "260");
      await typeInto(page, "#prompt", "ROMEO:\n");
      await page.click("#generate");
      await waitState(page, ["done", "error"]);
      const spans = await page.$$("#output .tok");
      const target = spans[Math.min(40, spans.length - 1)];
      const b = await target.boundingBox();
      await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
      await page.screenshot({ path: process.argv[3] });
      console.log("screenshot:", process.argv[3]);
    }
    if (errors.length) throw new Error("page errors: " + errors.join("; "));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    await server.stop();
  }
});
