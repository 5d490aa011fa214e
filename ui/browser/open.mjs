// Opens an app link in Debian's Chromium (headless, fake camera and
// microphone) the way a user without the app would, waits until the page's
// WebRTC has decoded pictures and heard sound, and prints what it measured
// as one JSON line. Used by the Rust end-to-end tests of the web version.
//
//   node browser/open.mjs <url> <screenshot.png> <seconds> [--click <selector>]...
// (the clicks happen in order once media flows, 1.5 s apart; `--click wait:MS`
// pauses instead)
import { launchChromium } from "./chromium.mjs";

const [url, screenshot, seconds = "15", ...rest] = process.argv.slice(2);
const clicks = rest.filter((_, i) => rest[i - 1] === "--click");
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1100, height: 800 }, locale: "ja-JP" });
const console_lines = [];
page.on("console", (m) => console_lines.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => console_lines.push(`pageerror: ${e.message}`));
let stats = {};
const deadline = Date.now() + Number(seconds) * 1000;
let redirectedTo = "";
/// The page's text at the screenshot, before the clicks.
let shown = "";
try {
  await page.goto(url, { waitUntil: "load" });
  redirectedTo = page.url();
  while (Date.now() < deadline) {
    stats = await page.evaluate(() => (window.nexmileStats ? window.nexmileStats() : {}));
    if (stats.framesDecoded > 30 && stats.audioLevel > 0) break;
    await page.waitForTimeout(250);
  }
  // Media flowing: hold it a few seconds, so the other side has plenty too
  // and the screenshot shows a running picture.
  await page.waitForTimeout(3000);
  stats = await page.evaluate(() => (window.nexmileStats ? window.nexmileStats() : {}));
  await page.screenshot({ path: screenshot });
  shown = await page.evaluate(() => document.body.innerText);
  for (const selector of clicks) {
    if (selector.startsWith("wait:")) {
      await page.waitForTimeout(Number(selector.slice(5)));
      continue;
    }
    await page.click(selector);
    await page.waitForTimeout(1500);
  }
} catch (e) {
  console_lines.push(`driver: ${e.message}`);
}
const text = await page.evaluate(() => document.body.innerText).catch(() => "");
console.log(JSON.stringify({ url: redirectedTo, stats, shown, text, console: console_lines }));
await browser.close();
