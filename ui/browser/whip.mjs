// Publishes into a Nexmile live over WHIP (RFC 9725), or plays one over
// WHEP, from Debian's Chromium: the browser's own WebRTC (fake camera and
// microphone) and the standard exchange — POST the offer as application/sdp
// with a bearer token, take the 201's answer and Location, DELETE the
// Location to stop. Prints one JSON line with what happened. Used by the
// Rust end-to-end tests of WHIP and WHEP.
//
//   node browser/whip.mjs publish <server> <token> <linkId> <seconds>
//   node browser/whip.mjs play <server> <token> <liveToken>/<linkId> <seconds>
//   node browser/whip.mjs ingest <server> <token> <WHIP URL> <seconds>
import { launchChromium } from "./chromium.mjs";

const [mode, server, token, target, seconds = "10"] = process.argv.slice(2);
const browser = await launchChromium();
const page = await browser.newPage();
const log = [];
page.on("console", (m) => log.push(m.text()));
let result = {};
try {
  await page.goto(`${server}/health`);
  result = await page.evaluate(
    async ({ mode, token, target }) => {
      const pc = new RTCPeerConnection();
      if (mode !== "play") {
        const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
        for (const track of media.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
      } else {
        pc.addTransceiver("video", { direction: "recvonly" });
        pc.addTransceiver("audio", { direction: "recvonly" });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, 3000);
      });
      const endpoint = {
        publish: `/whip/live/${encodeURIComponent(target)}`,
        play: `/whep/live/${target}`,
        ingest: target,
      }[mode];
      const reply = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/sdp", authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      const answer = await reply.text();
      if (reply.status !== 201) return { status: reply.status, error: answer };
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      window.whip = { pc, location: reply.headers.get("location"), token };
      return {
        status: reply.status,
        location: reply.headers.get("location"),
        contentType: reply.headers.get("content-type"),
        liveToken: reply.headers.get("x-nexmile-live-token"),
      };
    },
    { mode, token, target },
  );
  if (result.status === 201) {
    await page.waitForTimeout(Number(seconds) * 1000);
    Object.assign(
      result,
      await page.evaluate(async () => {
        const out = { framesEncoded: 0, framesDecoded: 0, audioPackets: 0, codecs: [] };
        (await window.whip.pc.getStats()).forEach((s) => {
          if (s.type === "outbound-rtp" && s.kind === "video") out.framesEncoded = s.framesEncoded ?? 0;
          if (s.type === "inbound-rtp" && s.kind === "video") out.framesDecoded = s.framesDecoded ?? 0;
          if (s.type === "inbound-rtp" && s.kind === "audio") out.audioPackets = s.packetsReceived ?? 0;
          if (s.type === "codec") out.codecs.push(s.mimeType);
        });
        // RFC 9725: the DELETE carries the POST's bearer token.
        const bearer = { authorization: `Bearer ${window.whip.token}` };
        out.deleteStatus = (await fetch(window.whip.location, { method: "DELETE", headers: bearer })).status;
        out.connection = window.whip.pc.connectionState;
        return out;
      }),
    );
  }
} catch (e) {
  result.error = String(e);
}
console.log(JSON.stringify({ ...result, log }));
await browser.close();
