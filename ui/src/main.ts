// The window's event loop: the engine's events go through reduce()
// (state.ts), and the screen is drawn from the state by screens/*. A screen
// is built when it changes and its live parts (timers, quality, billing)
// are patched in place here.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { openUrl } from "@tauri-apps/plugin-opener";
import { installFeedBench } from "./bench";
import { type MessageKey, devicesText, duration } from "./i18n";
import { type LiveView, visibleMessages, waitLeft } from "./live";
import { drawChart, routeText, series } from "./plot";
import { Ringer } from "./ringer";
import { type EngineEvent, type Overview, QUALITY_WINDOW, recordingAllowed, reduce, ringingLeft } from "./state";
import { VideoView } from "./video";
import { inCallScreen, incomingScreen, outgoingScreen } from "./screens/call";
import { endedScreen, messageScreen, confirmScreen, workingScreen } from "./screens/ended";
import { homeScreen } from "./screens/home";
import { liveScreen, commentsHtml, rankingHtml, giftPlayHtml, liveEndedScreen } from "./screens/live";
import { speakerTestText } from "./screens/panels";
import { videoTestScreen } from "./screens/videoTest";
import { type Catalogue, type DeviceList, activeProfile, escape, tr, ui } from "./view";

let builtFor = "";
let views: VideoView[] = [];
const ringer = new Ringer();

const root = document.getElementById("app") as HTMLElement;

async function refresh(): Promise<void> {
  ui.overview = await invoke<Overview>("overview");
  ui.state = { ...ui.state, online: ui.overview.online };
  render(true);
}

async function loadDevices(): Promise<void> {
  ui.deviceList = await invoke<DeviceList>("device_list");
  render(true);
}

async function loadCatalogue(): Promise<void> {
  ui.catalogue = await invoke<Catalogue>("effect_catalogue");
  render(true);
}

// ---- lives ----------------------------------------------------------------

/// Sets a container's HTML only when it changed (typing and scrolling survive).
function fill(name: string, html: string): void {
  root.querySelectorAll<HTMLElement>(`[data-fill="${name}"]`).forEach((el) => {
    if (el.dataset.html !== html) {
      el.dataset.html = html;
      el.innerHTML = html;
      if (name === "comments") el.scrollTop = el.scrollHeight;
    }
  });
}

function patchLive(live: LiveView, now: number): void {
  bind("live-viewers", tr("live.viewers", { count: live.viewers }));
  const since = live.onAirSince;
  const elapsedKey = live.role === "broadcaster" ? "live.elapsed" : "live.watching";
  bind("live-elapsed", since === undefined ? "" : tr(elapsedKey, { time: duration(ui.language, (now - since) / 1000) }));
  bind("live-time-left", live.timeLeftSec === undefined || live.timeLeftSec === null ? "" : tr("live.timeLeft", { time: duration(ui.language, live.timeLeftSec) }));
  fill("comments", commentsHtml(live));
  fill("ranking", rankingHtml(live));
  fill("gift-play", giftPlayHtml(live, now));
  fill(
    "live-messages",
    visibleMessages(live, now)
      .map(
        (m) => `<div class="live-message" style="left:${50 + m.x_percent / 2}%;top:${50 + m.y_percent / 2}%;width:${m.width_percent}%">${escape(m.text)}</div>`,
      )
      .join(""),
  );
  const n = live.notice;
  const notice = !n ? "" : n.kind === "payment" ? tr("live.paymentDone", { points: n.points }) : n.kind === "admin" ? tr("live.admin", { text: n.text }) : n.text;
  fill("live-notice", notice ? `<div class="${n?.kind === "refused" ? "warn" : "notice"}">${escape(notice)}</div>` : "");
  const commentWait = waitLeft(ui.lastComment, live.nextCommentMs, now);
  root.querySelectorAll<HTMLButtonElement>('[data-action="live-comment"]').forEach((b) => (b.disabled = commentWait > 0 || live.phase !== "onAir"));
  const giftWait = waitLeft(ui.lastGift, live.nextGiftMs, now);
  root.querySelectorAll<HTMLButtonElement>('[data-action="live-item"]').forEach((b) => (b.disabled = giftWait > 0 || live.phase !== "onAir"));
}

async function liveButton(button: Record<string, unknown>): Promise<void> {
  await invoke("live_action", { button });
}

function screenHtml(): string {
  const s = ui.state.screen;
  switch (s.kind) {
    case "home":
      return homeScreen();
    case "videoTest":
      return videoTestScreen();
    case "outgoing":
      return outgoingScreen(s.call);
    case "incoming":
      return incomingScreen(s.call);
    case "inCall":
      return inCallScreen(s.call);
    case "ended":
      return endedScreen();
    case "working":
      return workingScreen();
    case "live":
      return liveScreen(s.live);
    case "liveEnded":
      return liveEndedScreen(s.ended);
    case "refused":
      return messageScreen(tr("refused.title"), s.message);
    case "confirmLink":
      return confirmScreen();
    case "linkError":
      return messageScreen(
        tr("link.invalid.title"),
        tr("link.invalid.body"),
        `${s.message}${s.parameter ? ` — ${tr("link.invalid.parameter", { parameter: s.parameter })}` : ""}`,
      );
  }
}

// ---- drawing -------------------------------------------------------------

function startViews(): void {
  for (const view of views) view.stop();
  views = [];
  if (!ui.overview) return;
  const call = ui.state.screen.kind === "inCall" ? ui.state.screen.call : undefined;
  const userId = activeProfile()?.userId ?? "";
  const live = ui.state.screen.kind === "live" ? ui.state.screen.live : undefined;
  // Where the window cannot be kept out of captures, the other side's picture carries a watermark.
  const forbidden = (call && !recordingAllowed(call)) || (live?.role === "viewer" && !live.recordingAllowed);
  const watermark = forbidden && !ui.windowProtected ? () => `${userId}  ${new Date().toLocaleString("ja-JP")}` : undefined;
  root.querySelectorAll<HTMLCanvasElement>("canvas[data-video]").forEach((canvas) => {
    const stream = canvas.dataset.video as "local" | "remote";
    const view = new VideoView(canvas, stream, ui.overview!.feed, stream === "remote" ? watermark : undefined);
    view.start();
    views.push(view);
  });
}

function bind(name: string, text: string): void {
  root.querySelectorAll<HTMLElement>(`[data-bind="${name}"]`).forEach((el) => {
    if (el.textContent !== text) el.textContent = text;
  });
}

/// The live parts of the current screen.
function patch(): void {
  const now = performance.now();
  const s = ui.state.screen;
  const last = ui.state.quality[ui.state.quality.length - 1];
  const verdict = last ? tr(`quality.${last.verdict}` as MessageKey) : tr("quality.waiting");
  root.querySelectorAll<HTMLElement>('[data-bind="verdict"]').forEach((el) => {
    el.className = `verdict ${last?.verdict ?? "waiting"}`;
  });
  bind("verdict", verdict);
  bind("route", `${tr("quality.route")}: ${routeText(last)}`);
  if (last) {
    bind("q-rtt", last.rttMs === null ? "—" : `${Math.round(last.rttMs)} ms`);
    bind("q-loss", `${(Math.max(last.lossInbound, last.lossOutbound) * 100).toFixed(1)} %`);
    bind("q-kbps", `${Math.round(last.receiveKbps)} kbps`);
    bind("q-fps", `${last.receiveFps.toFixed(0)} fps`);
  }
  const values = series(ui.state.quality);
  const charts: Record<string, [number[], number, string]> = {
    rtt: [values.rttMs, 50, "#e4572e"],
    loss: [values.lossPercent, 5, "#c62828"],
    kbps: [values.kbps, 500, "#1565c0"],
    fps: [values.fps, 30, "#2e7d32"],
  };
  root.querySelectorAll<HTMLCanvasElement>("canvas[data-chart]").forEach((canvas) => {
    const [v, floor, colour] = charts[canvas.dataset.chart ?? ""] ?? [[], 1, "#000"];
    drawChart(canvas, v, floor, colour, QUALITY_WINDOW);
  });
  if (ui.state.devices) {
    bind("devices", devicesText(ui.language, ui.state.devices).join(" · "));
    // In a call only a missing device is worth the space.
    bind("missing-devices", devicesText(ui.language, ui.state.devices, true).join(" · "));
  }
  const level = ui.switches.microphone ? (ui.state.micLevelDbfs ?? -120) : -120;
  root.querySelectorAll<HTMLElement>('[data-meter="mic"]').forEach((bar) => {
    bar.style.width = `${Math.round(Math.min(1, Math.max(0, (level + 60) / 60)) * 100)}%`;
  });
  bind("meter-label", ui.switches.microphone ? tr("devices.micLevel") : tr("devices.muted"));
  bind("speaker-test", speakerTestText());
  if (s.kind === "outgoing") {
    const left = ringingLeft(s.call, now);
    bind("ringing", left === undefined ? tr("outgoing.preparing") : tr("outgoing.ringing", { sec: left }));
  }
  if (s.kind === "inCall") {
    const elapsed = s.call.connectedAt === undefined ? 0 : (now - s.call.connectedAt) / 1000;
    bind("elapsed", tr("incall.elapsed", { time: duration(ui.language, elapsed) }));
    const left = s.call.timeLeftSec;
    bind("time-left", left === undefined ? "" : left === null ? tr("incall.paidByOther") : tr("incall.timeLeft", { time: duration(ui.language, left) }));
  }
  if (s.kind === "live") patchLive(s.live, now);
  if (s.kind === "working") {
    const bar = root.querySelector<HTMLElement>('[data-bind="progress"]');
    if (bar) bar.style.width = `${Math.round((s.progress ?? 0) * 100)}%`;
  }
}

/// What rebuilds a live screen (its buttons and palette), beyond its kind.
function liveKey(): string {
  if (ui.state.screen.kind !== "live") return "";
  const live = ui.state.screen.live;
  return `${live.phase}:${live.paid}:${live.gifts.length}:${live.favorite}`;
}

function render(rebuild = false): void {
  const key = `${ui.state.screen.kind}:${ui.language}:${ui.showEffects}:${ui.showDevices}:${liveKey()}`;
  if (rebuild || key !== builtFor) {
    root.innerHTML = screenHtml();
    builtFor = key;
    root.querySelectorAll<HTMLImageElement>("img.avatar").forEach((img) =>
      img.addEventListener("error", () => {
        const initial = document.createElement("div");
        initial.className = "avatar";
        initial.textContent = img.dataset.initial ?? "?";
        img.replaceWith(initial);
      }),
    );
    startViews();
  }
  patch();
  if (ui.state.screen.kind === "incoming") ringer.start();
  else ringer.stop();
}

// ---- actions ---------------------------------------------------------------

async function chooseEffect(group: string, value: string): Promise<void> {
  if (!ui.catalogue) return;
  const chosen = { ...ui.catalogue.chosen, [group]: value || null };
  ui.catalogue = { ...ui.catalogue, chosen };
  render(true);
  await invoke("set_effects", { choice: chosen });
}

// Enter in the comment box sends the comment.
root.addEventListener("keydown", (event) => {
  const input = event.target as HTMLElement;
  if (event.key === "Enter" && !event.isComposing && input.dataset.input === "comment") {
    root.querySelector<HTMLButtonElement>('[data-action="live-comment"]')?.click();
  }
});

// A device picked or a sound-processing switch flipped: remembered for the profile at once.
root.addEventListener("change", async (event) => {
  const input = event.target as HTMLInputElement | HTMLSelectElement;
  const field = input.dataset.device;
  if (!field || !ui.deviceList) return;
  const value = input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value || null;
  ui.deviceList = { ...ui.deviceList, chosen: { ...ui.deviceList.chosen, [field]: value } };
  await invoke("set_devices", { settings: ui.deviceList.chosen });
});

root.addEventListener("click", async (event) => {
  const target = (event.target as HTMLElement).closest<HTMLElement>("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  switch (action) {
    case "language":
      ui.language = ui.language === "ja" ? "en" : "ja";
      localStorage.setItem("language", ui.language);
      document.documentElement.lang = ui.language;
      render(true);
      break;
    case "switch":
      await invoke("switch_profile", { site: target.dataset.site });
      await refresh();
      break;
    case "remove": {
      const site = ui.overview?.active ?? "";
      if (window.confirm(tr("home.removeConfirm", { site }))) {
        await invoke("remove_profile", { site });
        await refresh();
      }
      break;
    }
    case "confirm-link":
    case "decline-link":
      await invoke("confirm_link", { accepted: action === "confirm-link" });
      break;
    case "video-test":
      await loadCatalogue();
      await loadDevices();
      await invoke("video_test");
      break;
    case "effects":
      ui.showEffects = !ui.showEffects;
      if (ui.showEffects) await loadCatalogue();
      render(true);
      break;
    case "devices":
      ui.showDevices = !ui.showDevices;
      if (ui.showDevices) await loadDevices();
      render(true);
      break;
    case "speaker-test":
      try {
        const name = await invoke<string>("speaker_test", { speaker: ui.deviceList?.chosen.speaker ?? null });
        ui.speakerTest = { played: name };
      } catch (why) {
        ui.speakerTest = { failed: String(why) };
      }
      patch();
      break;
    case "effect":
      await chooseEffect(target.dataset.group ?? "", target.dataset.value ?? "");
      break;
    case "hangup":
      await invoke("hang_up");
      break;
    case "answer":
      ringer.stop();
      await invoke("answer");
      break;
    case "decline":
      ringer.stop();
      await invoke("decline");
      break;
    case "mic":
    case "camera":
      ui.switches = action === "mic" ? { ...ui.switches, microphone: !ui.switches.microphone } : { ...ui.switches, camera: !ui.switches.camera };
      await invoke("set_switches", ui.switches);
      render(true);
      break;
    case "return":
      if (ui.state.returnUrl) await openUrl(ui.state.returnUrl);
      break;
    case "live-start":
      await liveButton({ kind: "start" });
      break;
    case "live-comment": {
      const input = root.querySelector<HTMLInputElement>('[data-input="comment"]');
      const text = input?.value.trim() ?? "";
      if (!text || !input) break;
      ui.lastComment = performance.now();
      input.value = "";
      await liveButton({ kind: "comment", text });
      break;
    }
    case "live-item":
      ui.lastGift = performance.now();
      await liveButton({ kind: "item", category: target.dataset.category, itemNo: target.dataset.item });
      break;
    case "live-paid": {
      const price = Number(root.querySelector<HTMLInputElement>('[data-input="price"]')?.value ?? 0);
      if (price > 0) await liveButton({ kind: "paidSwitch", unitPrice: Math.floor(price) });
      break;
    }
    case "open-banner": {
      const url = target.dataset.url ?? "";
      if (/^https?:\/\//.test(url)) await openUrl(url);
      break;
    }
    case "live-pay":
      await liveButton({ kind: "pay", amount: Number(target.dataset.amount) });
      break;
    case "live-remove":
      await liveButton({ kind: "remove", userId: target.dataset.user });
      break;
    case "live-favorite":
      if (ui.state.screen.kind === "live") {
        const on = !ui.state.screen.live.favorite;
        ui.state = { ...ui.state, screen: { kind: "live", live: { ...ui.state.screen.live, favorite: on } } };
        await liveButton({ kind: "favorite", on });
        render(true);
      }
      break;
    case "open-push": {
      const page = ui.state.pushes[Number(target.dataset.index)]?.clickAction;
      if (page) await invoke("open_page", { target: page });
      break;
    }
    case "home":
      ui.state = { ...ui.state, screen: { kind: "home" }, returnUrl: null };
      await refresh();
      break;
  }
});

async function onEngineEvent(payload: EngineEvent): Promise<void> {
  const before = ui.state.screen.kind;
  ui.state = reduce(ui.state, payload, performance.now());
  const after = ui.state.screen.kind;
  const screen = ui.state.screen;
  if (screen.kind === "inCall" && before !== "inCall") {
    // Keep the call out of screen captures unless the partner allows recording.
    ui.windowProtected = await invoke<boolean>("protect_window", { protect: !recordingAllowed(screen.call) });
    ui.switches = { microphone: true, camera: true };
    await invoke("set_switches", ui.switches);
  }
  if (before === "inCall" && after !== "inCall") await invoke("protect_window", { protect: false });
  if (screen.kind === "live" && before !== "live") {
    // A viewer's window is kept out of captures unless the partner allows recording (serviceOptions 2).
    const protect = screen.live.role === "viewer" && !screen.live.recordingAllowed;
    ui.windowProtected = await invoke<boolean>("protect_window", { protect });
    ui.switches = { microphone: true, camera: true };
    await invoke("set_switches", ui.switches);
    await loadCatalogue();
  }
  if (before === "live" && after !== "live") await invoke("protect_window", { protect: false });
  if (after === "videoTest" && before !== "videoTest") await loadCatalogue();
  if (["activated", "link.done", "call.ended", "call.cancelled", "online"].includes(payload.event)) {
    await refresh();
    return;
  }
  // A message arriving on the home screen shows at once.
  render(before !== after || (payload.event === "push" && after === "home"));
}

async function start(): Promise<void> {
  document.documentElement.lang = ui.language;
  await listen<EngineEvent>("nexmile://engine", (event) => void onEngineEvent(event.payload));
  await refresh();
  installFeedBench(() => ui.overview?.feed);
  setInterval(patch, 250);
}

void start();
