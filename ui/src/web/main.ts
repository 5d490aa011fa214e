// The web version (spec §2.3.1 allowWeb, chapter 6): the app-link address
// continues here when no app is installed. The browser's own WebRTC talks to
// the server's SFU with the app's signalling (/ws), so this page is also the
// proof that the server speaks standard WebRTC. Effects need the native
// engine and are absent here; the screens say so.

import { answerIn, type CandidateMode } from "./candidates";
import { duration, type Language, type MessageKey, messages, t } from "../i18n";
import type {
  ActivateReply,
  ActivateRequest,
  ClientMessage,
  DeviceInfo,
  LiveNotice,
  ServerMessage,
} from "../generated/types";
import { frameCss, lineKind, linePieces, type LiveView, liveEvent, placeholderValues, reduceLive } from "../live";
import { RECORDING_ALLOWED } from "../state";
import "./web.css";

const language: Language = navigator.language.toLowerCase().startsWith("ja") || !navigator.language.startsWith("en") ? "ja" : "en";
const tr = (key: string, params: Record<string, string | number> = {}) => t(language, key as MessageKey, params);
const app = document.getElementById("app") as HTMLElement;
const [, , fn = ""] = location.pathname.split("/");
const params = new URLSearchParams(location.search);
const site = params.get("site") ?? "nexmile";

/// A server message of one of the `types`.
type Reply<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function show(html: string): void {
  app.innerHTML = `<header><b>Nexmile</b> <span>${tr("web.title")}</span></header><main>${html}</main>`;
}

function fail(message: string): void {
  show(`<p class="error">${escape(tr("web.failed", { message }))}</p>${backToSite()}`);
}

/// サイトへ戻る, where the link gave an http(s) returnUrl.
function backToSite(): string {
  const back = params.get("returnUrl");
  return back && /^https?:\/\//.test(back) ? `<a class="button" href="${escape(back)}">${tr("web.backToSite")}</a>` : "";
}

/// The browser's device token, kept like the app keeps its own.
function deviceToken(): string {
  const key = `nexmile.device.${site}`;
  let token = localStorage.getItem(key);
  if (!token) {
    token = crypto.randomUUID();
    localStorage.setItem(key, token);
  }
  return token;
}

const device = (): DeviceInfo => ({
  device_token: deviceToken(),
  app_version: "1.0.0",
  os_type: 3,
  device_name: /Chrome\//.test(navigator.userAgent) ? "Chrome" : /Safari\//.test(navigator.userAgent) ? "Safari" : "Browser",
  os_version: navigator.platform || "web",
});

async function activate(): Promise<string> {
  const request: ActivateRequest = { site, device: device(), unique_id: params.get("uniqueId") ?? undefined };
  const reply = (await fetch("/api/activate", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  }).then((r) => r.json())) as ActivateReply;
  if (reply.result !== "activated") throw new Error(reply.message);
  return reply.session_token;
}

/// The signalling socket: messages in order, awaited by predicate.
class Signalling {
  private waiting: { types: ServerMessage["type"][]; resolve: (m: ServerMessage) => void }[] = [];
  onMessage: (m: ServerMessage) => void = () => {};
  private constructor(private ws: WebSocket) {
    ws.onmessage = (e) => {
      const message = JSON.parse(String(e.data)) as ServerMessage;
      const waiter = this.waiting.findIndex((w) => w.types.includes(message.type));
      if (waiter >= 0) this.waiting.splice(waiter, 1)[0].resolve(message);
      this.onMessage(message);
    };
  }
  static async open(session: string): Promise<Signalling> {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("signalling"));
    });
    const signalling = new Signalling(ws);
    signalling.send({ type: "hello", protocol: 1, session_token: session, device: device() });
    const welcome = await signalling.next("welcome", "error");
    if (welcome.type === "error") throw new Error(welcome.message);
    me = welcome.user_id;
    iceServers = (welcome.ice_servers ?? []).map(({ urls, username, credential }) => ({
      urls,
      username: username ?? undefined,
      credential: credential ?? undefined,
    }));
    return signalling;
  }
  send(message: ClientMessage): void {
    this.ws.send(JSON.stringify(message));
  }
  /// The next message of one of `types`.
  next<T extends ServerMessage["type"]>(...types: T[]): Promise<Reply<T>> {
    return new Promise((resolve) =>
      this.waiting.push({ types, resolve: (m) => resolve(m as Reply<T>) }),
    );
  }
}

/// A complete offer, as the signalling carries it (the JSON of an
/// RTCSessionDescription): the server answers whole SDPs, without trickle ICE.
async function offer(pc: RTCPeerConnection): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise<void>((resolve) => {
      const done = () => pc.iceGatheringState === "complete" && resolve();
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }
  return JSON.stringify(pc.localDescription);
}

/// What the tests (and the quality line) read: decoded pictures, sound level, codecs.
async function mediaStats(pc: RTCPeerConnection | undefined) {
  const out = { framesDecoded: 0, framesPerSecond: 0, sendFps: 0, audioLevel: 0, audioPackets: 0, rttMs: 0, codecs: [] as string[] };
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.framesDecoded = s.framesDecoded ?? 0;
      out.framesPerSecond = s.framesPerSecond ?? 0;
    }
    if (s.type === "outbound-rtp" && s.kind === "video") out.sendFps = s.framesPerSecond ?? 0;
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.audioLevel = Math.max(out.audioLevel, s.audioLevel ?? 0);
      out.audioPackets = s.packetsReceived ?? 0;
    }
    if (s.type === "candidate-pair" && s.state === "succeeded" && s.currentRoundTripTime) out.rttMs = Math.round(s.currentRoundTripTime * 1000);
    if (s.type === "codec") out.codecs.push(String(s.mimeType));
  });
  return out;
}

let current: RTCPeerConnection | undefined;
/// This member's user ID at the site (the Welcome's), for the watermark.
let me = "";
/// The STUN and TURN servers the server's welcome gave (TURN with a
/// short-lived credential).
let iceServers: RTCIceServer[] = [];

/// A browser cannot keep its window out of screen recordings, so where the
/// partner did not allow recording the remote picture carries the viewer's
/// ID and the time, as the app does on Linux.
function watermark(video: HTMLElement | null): void {
  if (!video || video.parentElement?.querySelector(".watermark")) return;
  const mark = document.createElement("div");
  mark.className = "watermark";
  mark.setAttribute("aria-hidden", "true");
  const draw = () => (mark.textContent = `${me}  ${new Date().toLocaleString("ja-JP")}  `.repeat(40));
  draw();
  setInterval(draw, 1000);
  video.insertAdjacentElement("afterend", mark);
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = tr("protection.watermark");
  mark.parentElement?.insertAdjacentElement("afterend", note);
}

/// Plays the remote picture and sound. Where the browser's autoplay policy
/// refuses sound without a click, it plays muted and offers to unmute.
function play(video: HTMLVideoElement, stream: MediaStream): void {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch(() => {
    video.muted = true;
    void video.play();
    if (app.querySelector("[data-unmute]")) return;
    const unmute = document.createElement("button");
    unmute.dataset.unmute = "";
    unmute.textContent = tr("web.unmute");
    unmute.onclick = () => {
      video.muted = false;
      void video.play();
      unmute.remove();
    };
    video.insertAdjacentElement("afterend", unmute);
  });
}

/// The remote picture and sound, in one stream on the page's remote video
/// (the server sends them as separate streams; both must play).
function showRemote(pc: RTCPeerConnection): void {
  const remote = new MediaStream();
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    const video = app.querySelector("[data-remote]") as HTMLVideoElement | null;
    if (video) play(video, remote);
  };
}

/// Resolves once `pc` has decoded a picture (or, `soundOnly`, received sound).
function firstMedia(pc: RTCPeerConnection, soundOnly: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = setInterval(async () => {
      const s = await mediaStats(pc);
      if (s.framesDecoded > 0 || (soundOnly() && s.audioPackets > 0)) {
        clearInterval(check);
        resolve();
      }
    }, 200);
  });
}

/// The connection's course in the browser's console (what support asks for).
function traced(pc: RTCPeerConnection): RTCPeerConnection {
  pc.addEventListener("iceconnectionstatechange", () => console.info(`ice: ${pc.iceConnectionState}`));
  pc.addEventListener("connectionstatechange", () => console.info(`connection: ${pc.connectionState}`));
  return pc;
}
(window as unknown as { nexmileStats: () => Promise<unknown> }).nexmileStats = () => mediaStats(current);

function qualityLoop(element: () => HTMLElement | null): void {
  setInterval(async () => {
    const target = element();
    if (!target || !current) return;
    const s = await mediaStats(current);
    target.textContent = `${s.framesPerSecond || s.sendFps} fps · RTT ${s.rttMs} ms · ${[...new Set(s.codecs)].join(", ")}`;
  }, 1000);
}

// ---- the functions ---------------------------------------------------------

async function videoTest(signalling: Signalling): Promise<void> {
  const local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  show(`<h1>${tr("web.videoTest")}</h1><p class="muted">${tr("web.noEffects")}</p>
    <div class="pair"><figure><video data-local autoplay muted playsinline></video><figcaption>${tr("web.own")}</figcaption></figure>
    <figure><video data-remote autoplay playsinline></video><figcaption>${tr("web.returned")}</figcaption></figure></div>
    <p class="quality" data-quality></p><button data-end>${tr("web.end")}</button>`);
  (app.querySelector("[data-local]") as HTMLVideoElement).srcObject = local;
  const pc = (current = traced(new RTCPeerConnection({ iceServers })));
  local.getTracks().forEach((track) => pc.addTrack(track, local));
  showRemote(pc);
  signalling.send({ type: "start_video_test", offer: await offer(pc) });
  const answer = await signalling.next("media_answer");
  await pc.setRemoteDescription(JSON.parse(answer.answer));
  qualityLoop(() => app.querySelector("[data-quality]"));
  app.querySelector("[data-end]")?.addEventListener("click", () => {
    signalling.send({ type: "end_video_test" });
    pc.close();
    local.getTracks().forEach((t) => t.stop());
    show(`<p>${tr("web.ended")}</p>`);
  });
}

async function makeCall(signalling: Signalling): Promise<void> {
  const video = params.get("video") === "1";
  signalling.send({ type: "make_call", callee_id: params.get("calleeId") ?? "", video });
  const prepared = await signalling.next("call_prepared", "call_ended", "error");
  if (prepared.type === "error") return fail(prepared.message);
  if (prepared.type === "call_ended") return fail(prepared.message ?? String(prepared.reason));
  const token = prepared.call_token;
  const name = prepared.peer_name;
  const local = await navigator.mediaDevices.getUserMedia({ video, audio: true });
  show(`<h1 data-status>${escape(tr("web.calling", { name }))}</h1>
    <div class="call"><video data-remote autoplay playsinline></video><video data-local autoplay muted playsinline></video></div>
    <p class="quality" data-quality></p><button class="danger" data-end>${tr("incall.hangup")}</button>`);
  (app.querySelector("[data-local]") as HTMLVideoElement).srcObject = local;
  if ((prepared.options & RECORDING_ALLOWED) === 0) watermark(app.querySelector("[data-remote]"));
  const pc = (current = traced(new RTCPeerConnection({ iceServers })));
  local.getTracks().forEach((track) => pc.addTrack(track, local));
  showRemote(pc);
  signalling.send({ type: "start_call", call_token: token, offer: await offer(pc) });
  const answer = await signalling.next("media_answer");
  // The site's candidateMode for this caller: only pairs of that family.
  await pc.setRemoteDescription(answerIn(answer.answer, prepared.candidate_mode));
  qualityLoop(() => app.querySelector("[data-quality]"));
  signalling.onMessage = (m) => {
    const status = app.querySelector("[data-status]");
    if (m.type === "connected" && status) status.textContent = tr("web.inCall", { name });
    if (m.type === "call_ended") ended(pc, local);
  };
  app.querySelector("[data-end]")?.addEventListener("click", () => {
    signalling.send({ type: "hangup", call_token: token });
    ended(pc, local);
  });
}

function ended(pc: RTCPeerConnection, local?: MediaStream, why = ""): void {
  pc.close();
  local?.getTracks().forEach((t) => t.stop());
  show(`<h1>${tr("web.ended")}</h1>${why ? `<p data-reason>${escape(why)}</p>` : ""}${backToSite()}`);
}

/// Why a live ended for this viewer, in the app's words.
function liveReason(ended: Extract<LiveNotice, { kind: "ended" }>): string {
  if (ended.message) return ended.message;
  const key = `liveReason.${ended.reason}`;
  return key in messages[language] ? tr(key) : ended.reason;
}

/// What both sides' live screens show: the comments and the viewer count.
function renderCommon(live: LiveView): void {
  const fill = app.querySelector("[data-comments]");
  if (fill) fill.innerHTML = commentsHtml(live);
  const count = app.querySelector("[data-viewers]");
  if (count) count.textContent = tr("live.viewers", { count: live.viewers });
}

/// The comment area's lines, each in its §5.4.2 frame and §5.4.3 wording.
function commentsHtml(live: LiveView): string {
  return live.comments
    .map((c) => {
      const { frame, wording } = lineKind(live.role, c);
      const values = placeholderValues(c, live.liverName, (points) => tr("live.points", { points }));
      const text = linePieces(live.appearance, wording, tr(`wording.${wording}`), values)
        .map((p) => (p.placeholder === "Tran.UserName" ? `<b>${escape(p.text)}</b>` : escape(p.text)))
        .join("");
      return `<div class="comment" style="${frameCss(live.appearance, frame)}">${text}</div>`;
    })
    .join("");
}

/// The broadcaster: the partner's 11, the camera's preview through the
/// server before the start, 12 on the start button, then comments, gifts
/// and the viewer count; 配信終了 ends it (13).
async function broadcastLive(signalling: Signalling): Promise<void> {
  const local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  let live: LiveView | undefined;
  let liveToken = "";
  // The site's candidateMode for this member, from the live's details.
  let mode: CandidateMode;
  const pc = (current = traced(new RTCPeerConnection({ iceServers })));
  local.getTracks().forEach((track) => pc.addTransceiver(track, { direction: "sendonly" }));
  const render = () => {
    if (!live) return;
    renderCommon(live);
    const badge = app.querySelector("[data-badge]");
    if (badge) badge.textContent = live.phase === "onAir" ? tr("live.onAir") : tr("live.readyBadge");
    const start = app.querySelector("[data-start]") as HTMLButtonElement | null;
    if (start) start.hidden = live.phase === "onAir";
  };
  signalling.onMessage = async (m) => {
    if (m.type === "live" && m.notice.kind === "prepared") mode = m.notice.candidate_mode;
    if (m.type === "media_answer") await pc.setRemoteDescription(answerIn(m.answer, mode));
    if (m.type === "error") console.error(m.message);
    if (m.type !== "live") return;
    const notice = m.notice;
    if (notice.kind === "ended") return ended(pc, local, liveReason(notice));
    const first = !live;
    live = reduceLive(live, liveEvent(m.live_token, notice), Date.now());
    if (first && live) {
      liveToken = m.live_token;
      show(`<div class="live"><div class="stage"><video data-local autoplay muted playsinline></video>
        <div class="top"><b>${escape(live.title || live.liverName)}</b> <span class="badge" data-badge></span> <span data-viewers></span></div>
        <div class="comments" data-comments></div></div>
        <p class="muted">${tr("live.ready")} ${tr("web.noEffects")}</p>
        <form class="comment-form" data-form><input data-comment maxlength="200" placeholder="${escape(tr("live.commentPlaceholder"))}"><button>${tr("live.send")}</button></form>
        <p class="quality" data-quality></p>
        <button class="primary" data-start>${tr("live.start")}</button> <button class="danger" data-end>${tr("live.end")}</button></div>`);
      (app.querySelector("[data-local]") as HTMLVideoElement).srcObject = local;
      app.querySelector("[data-start]")?.addEventListener("click", () => signalling.send({ type: "start_broadcast", live_token: liveToken }));
      app.querySelector("[data-end]")?.addEventListener("click", () => signalling.send({ type: "leave_live", live_token: liveToken }));
      app.querySelector("[data-form]")?.addEventListener("submit", (e) => {
        e.preventDefault();
        const input = app.querySelector("[data-comment]") as HTMLInputElement;
        if (input.value.trim()) signalling.send({ type: "live_comment", live_token: liveToken, text: input.value });
        input.value = "";
      });
      qualityLoop(() => app.querySelector("[data-quality]"));
      // The media connects at once, so the preview runs through the server before the start.
      signalling.send({ type: "broadcast_media", live_token: liveToken, offer: await offer(pc) });
    }
    render();
  };
  signalling.send({ type: "prepare_broadcast", link_id: params.get("linkId") ?? "" });
}

async function viewLive(signalling: Signalling): Promise<void> {
  const liveToken = params.get("liveToken") ?? "";
  let live: LiveView | undefined;
  // The site's candidateMode for this member, from the live's details.
  let mode: CandidateMode;
  const pc = (current = traced(new RTCPeerConnection({ iceServers })));
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  /// A media failure the server reported, shown when the live ends for this page.
  let failure = "";
  showRemote(pc);
  // §5.3.10: viewing starts once a picture was really decoded (radio: sound).
  void firstMedia(pc, () => live?.audioOnly ?? false).then(() =>
    signalling.send({ type: "live_media_received", live_token: liveToken }),
  );
  const render = () => {
    if (!live) return;
    renderCommon(live);
    const left = app.querySelector("[data-time-left]");
    if (left) left.textContent = typeof live.timeLeftSec === "number" ? tr("live.timeLeft", { time: duration(language, live.timeLeftSec) }) : "";
    const notice = app.querySelector("[data-notice]");
    const n = live.notice;
    if (notice) notice.textContent = !n ? "" : n.kind === "payment" ? tr("live.paymentDone", { points: n.points }) : n.text;
    // The palette and the point purchases, as in the app's viewer panel.
    const gifts = app.querySelector("[data-gifts]");
    const key = `${live.gifts.map((g) => g.name).join()}|${live.favorite}`;
    if (gifts && gifts.getAttribute("data-key") !== key) {
      gifts.setAttribute("data-key", key);
      gifts.innerHTML =
        live.gifts
          .map(
            (g) => `<button data-item="${escape(g.category)}/${escape(g.item_no)}">${escape(g.name)}<small>${g.point > 0 ? tr("live.points", { points: g.point }) : tr("live.free")}</small></button>`,
          )
          .join("") +
        live.quickPayments.map((q) => `<button data-pay="${q.paymentAmount}">${tr("live.buyPoints")}: ${escape(q.pointText)}</button>`).join("") +
        `<button data-favorite>${live.favorite ? tr("live.favorited") : tr("live.favorite")}</button>`;
    }
  };
  signalling.onMessage = async (m) => {
    if (m.type === "gift_catalogue") live = reduceLive(live, { event: "live.gifts", items: m.items }, Date.now());
    if (m.type === "live" && m.notice.kind === "prepared") mode = m.notice.candidate_mode;
    if (m.type === "media_answer") await pc.setRemoteDescription(answerIn(m.answer, mode));
    if (m.type === "error") {
      console.error(m.message);
      failure = m.message;
    }
    if (m.type !== "live") return;
    const notice = m.notice;
    if (notice.kind === "ended") return ended(pc, undefined, failure || liveReason(notice));
    const first = !live;
    live = reduceLive(live, liveEvent(m.live_token, notice), Date.now());
    if (first && live) {
      show(`<div class="live"><div class="stage"><video data-remote autoplay playsinline></video>
        ${live.audioOnly ? `<div class="radio">${escape(live.liverName)} · ${tr("live.radio")}</div>` : ""}
        <div class="top"><b>${escape(live.title || live.liverName)}</b> <span class="badge">${tr("live.onAir")}</span> <span data-viewers></span></div>
        <div class="comments" data-comments></div></div>
        <p class="notice" data-notice></p>
        <form class="comment-form" data-form><input data-comment maxlength="200" placeholder="${escape(live.commentGuide ?? tr("live.commentPlaceholder"))}"><button>${tr("live.send")}</button></form>
        <div class="gifts" data-gifts></div>
        <p class="muted">${tr("web.noEffects")} <span data-time-left></span></p><p class="quality" data-quality></p><button class="danger" data-leave>${tr("live.leave")}</button></div>`);
      app.querySelector("[data-form]")?.addEventListener("submit", (e) => {
        e.preventDefault();
        const input = app.querySelector("[data-comment]") as HTMLInputElement;
        if (input.value.trim()) signalling.send({ type: "live_comment", live_token: liveToken, text: input.value });
        input.value = "";
      });
      if (!live.recordingAllowed) watermark(app.querySelector("[data-remote]"));
      app.querySelector("[data-leave]")?.addEventListener("click", () => signalling.send({ type: "leave_live", live_token: liveToken }));
      app.querySelector("[data-gifts]")?.addEventListener("click", (e) => {
        const button = (e.target as HTMLElement).closest("button");
        if (!button || !live) return;
        if (button.dataset.item) {
          const [category, item_no] = button.dataset.item.split("/");
          signalling.send({ type: "live_item", live_token: liveToken, category, item_no });
        } else if (button.dataset.pay) {
          signalling.send({ type: "payment", live_token: liveToken, amount: Number(button.dataset.pay), payment_id: crypto.randomUUID() });
        } else if (button.hasAttribute("data-favorite")) {
          live = { ...live, favorite: !live.favorite };
          signalling.send({ type: "favorite", live_token: liveToken, favorite: live.favorite });
          render();
        }
      });
      qualityLoop(() => app.querySelector("[data-quality]"));
      signalling.send({ type: "receive_live", live_token: liveToken, offer: await offer(pc) });
    }
    render();
  };
  signalling.send({ type: "view_live", live_token: liveToken, link_id: params.get("linkId") ?? "" });
}

async function main(): Promise<void> {
  document.documentElement.lang = language;
  show(`<p class="muted">${tr("web.connecting")}</p>`);
  try {
    const signalling = await Signalling.open(await activate());
    if (fn === "videoSetting") await videoTest(signalling);
    else if (fn === "makecall") await makeCall(signalling);
    else if (fn === "viewLive") await viewLive(signalling);
    else if (fn === "broadcastLive") await broadcastLive(signalling);
    else show(`<p>${tr("web.unsupported")}</p>`);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}

void main();
