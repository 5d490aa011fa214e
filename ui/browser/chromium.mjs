// Debian's Chromium as the browser tests run it: headless, a fake camera
// and microphone granted without asking, and host candidates as addresses
// rather than mDNS names (the server is on this machine).
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--no-sandbox",
    ],
  });
}
