// Plays an HLS playlist in Debian's Chromium with hls.js (Media Source
// Extensions), as a viewer's page would, and prints one JSON line: what was
// decoded, where the player stands against the live edge, and any error.
// Used by the Rust end-to-end test of the ImageFlux view surface.
//
//   node browser/hls.mjs <playlist URL> <seconds>
import { fileURLToPath } from "node:url";
import { launchChromium } from "./chromium.mjs";

const [url, seconds = "8"] = process.argv.slice(2);
const hlsScript = fileURLToPath(new URL("../node_modules/hls.js/dist/hls.min.js", import.meta.url));
const browser = await launchChromium();
const page = await browser.newPage();
const log = [];
page.on("console", (m) => log.push(m.text()));
let result = {};
try {
  await page.goto(new URL("/health", url).href);
  await page.addScriptTag({ path: hlsScript });
  result = await page.evaluate(
    async ({ url, seconds }) => {
      const out = { supported: Hls.isSupported(), errors: [] };
      if (!out.supported) return out;
      const video = document.createElement("video");
      video.muted = true;
      document.body.append(video);
      const hls = new Hls({ lowLatencyMode: false });
      hls.on(Hls.Events.ERROR, (_, data) => out.errors.push(`${data.type}/${data.details}${data.fatal ? " (fatal)" : ""}`));
      hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) => out.errors.push(String(e))));
      hls.loadSource(url);
      hls.attachMedia(video);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      const quality = video.getVideoPlaybackQuality();
      Object.assign(out, {
        framesDecoded: quality.totalVideoFrames - quality.droppedVideoFrames,
        audioBytesDecoded: video.webkitAudioDecodedByteCount ?? null,
        currentTime: video.currentTime,
        width: video.videoWidth,
        height: video.videoHeight,
        latency: hls.latency,
        targetLatency: hls.targetLatency,
        levels: hls.levels.map((l) => ({ codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(","), width: l.width, height: l.height })),
      });
      hls.destroy();
      return out;
    },
    { url, seconds: Number(seconds) },
  );
} catch (e) {
  result.error = String(e);
}
console.log(JSON.stringify({ ...result, log }));
await browser.close();
