// Debian's Chromium as the browser tests run it: headless, a fake camera
// and microphone granted without asking, and host candidates as addresses
// rather than mDNS names (the server is on this machine).
//
// NEXMILE_SERVER_CERT names the PEM certificate of a server whose
// certificate comes from a test's own authority: Chromium accepts that one
// key (its SPKI pinned with --ignore-certificate-errors-spki-list) and
// still checks every other certificate as usual.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

function trustedServerKey() {
  const path = process.env.NEXMILE_SERVER_CERT;
  if (!path) return [];
  const spki = new X509Certificate(readFileSync(path)).publicKey.export({ type: "spki", format: "der" });
  const pin = createHash("sha256").update(spki).digest("base64");
  return [`--ignore-certificate-errors-spki-list=${pin}`];
}

// NEXMILE_REAL_DEVICES=1 (the sound benchmark) keeps the system's sound
// devices (PulseAudio, as PULSE_SERVER/PULSE_SOURCE/PULSE_SINK say) and lets
// the page play sound: Playwright mutes headless browsers by default.
export function launchChromium() {
  const real = process.env.NEXMILE_REAL_DEVICES === "1";
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    ignoreDefaultArgs: real ? ["--mute-audio"] : [],
    args: [
      ...(real ? ["--autoplay-policy=no-user-gesture-required"] : ["--use-fake-device-for-media-stream"]),
      "--use-fake-ui-for-media-stream",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--no-sandbox",
      ...trustedServerKey(),
    ],
  });
}
