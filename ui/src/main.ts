// The window's screens: the engine's events go through reduce() (state.ts),
// and the screen is drawn from the state. A screen is built when it changes
// and its live parts (timers, quality, billing) are patched in place.

import { convertFileSrc, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { openUrl } from "@tauri-apps/plugin-opener";
import { installFeedBench } from "./bench";
import { type Language, type MessageKey, devicesText, duration, messages, reasonText, t } from "./i18n";
import { frameCss, type LiveEnded, type LiveView, lineKind, linePieces, placeholderValues, visibleMessages, waitLeft } from "./live";
import { drawChart, routeText, series } from "./plot";
import { Ringer } from "./ringer";
import {
  type AppState,
  type CallView,
  type EngineEvent,
  type Overview,
  QUALITY_WINDOW,
  initialState,
  recordingAllowed,
  reduce,
  ringingLeft,
} from "./state";
import { VideoView } from "./video";

interface CatalogueItem {
  id: string;
  label: string;
  preview?: string | null;
}
interface Catalogue {
  wallpapers: CatalogueItem[];
  faceFilters: CatalogueItem[];
  chosen: { wallpaper?: string | null; mosaic?: string | null; faceFilter?: string | null };
  /// The site's effect files (gift pictures are found here).
  dir: string;
}

let language: Language = (localStorage.getItem("language") as Language) ?? "ja";
let state: AppState = initialState;
let overview: Overview | null = null;
let catalogue: Catalogue | null = null;
let showEffects = false;
/// The settings' device pickers: what there is and what the profile chose.
let deviceList: DeviceList | null = null;
let showDevices = false;
/// The last speaker test: the speaker that played it, or why none could.
let speakerTest: { played: string } | { failed: string } | null = null;

/// The speaker test's outcome in the screen's language (it may change after the click).
function speakerTestText(): string {
  if (!speakerTest) return "";
  return "played" in speakerTest
    ? tr("devices.speakerTestPlayed", { name: speakerTest.played })
    : tr("devices.speakerTestFailed", { why: speakerTest.failed });
}
let switches = { microphone: true, camera: true };
/// Whether the window is kept out of captures on this system (set per call).
let windowProtected = false;
let builtFor = "";
let views: VideoView[] = [];
const ringer = new Ringer();

const root = document.getElementById("app") as HTMLElement;
const tr = (key: MessageKey, params: Record<string, string | number> = {}) => t(language, key, params);

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function activeProfile() {
  return overview?.profiles.find((p) => p.site === overview?.active);
}

async function refresh(): Promise<void> {
  overview = await invoke<Overview>("overview");
  state = { ...state, online: overview.online };
  render(true);
}

interface DeviceSettings {
  camera: string | null;
  microphone: string | null;
  speaker: string | null;
  noiseSuppression: boolean;
  gainControl: boolean;
}

interface DeviceList {
  cameras: string[];
  microphones: string[];
  speakers: string[];
  chosen: DeviceSettings;
}

async function loadDevices(): Promise<void> {
  deviceList = await invoke<DeviceList>("device_list");
  render(true);
}

async function loadCatalogue(): Promise<void> {
  catalogue = await invoke<Catalogue>("effect_catalogue");
  render(true);
}

// ---- screens -------------------------------------------------------------

function header(): string {
  const profile = activeProfile();
  const dot = state.online ? "online" : "offline";
  return `<header class="bar">
    <div class="brand"><span class="logo">N</span>${tr("app.title")}</div>
    <div class="who">${profile ? `<span class="status ${dot}"></span>${escape(profile.site)} · ${escape(profile.name)}` : ""}</div>
    <button class="ghost" data-action="language">${tr("language")}</button>
  </header>`;
}

function homeScreen(): string {
  const profile = activeProfile();
  const notice = state.screen.kind === "home" ? state.screen.notice : undefined;
  let noticeText = "";
  if (notice?.startsWith("activated:")) {
    const [, site, name] = notice.split(":");
    noticeText = tr("activated", { site, name });
  } else if (notice === "busy") {
    noticeText = tr("link.busy");
  }
  const profiles = (overview?.profiles ?? [])
    .map(
      (p) => `<li class="profile ${p.site === overview?.active ? "active" : ""}" data-action="switch" data-site="${escape(p.site)}">
        <div class="site">${escape(p.site)}</div>
        <div class="name">${escape(p.name)} <span class="muted">(${escape(p.userId)})</span></div>
        ${p.site === overview?.active ? `<span class="tag">${tr("home.active")}</span>` : ""}
      </li>`,
    )
    .join("");
  const recent = (overview?.recentCalls ?? [])
    .slice(0, 8)
    .map((c) => {
      const when = new Date(c.endedAt * 1000).toLocaleString(language === "ja" ? "ja-JP" : "en-GB", {
        month: "numeric",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
      });
      const what = c.talkSec > 0 ? duration(language, c.talkSec) : reasonText(language, c.reason);
      return `<li><span class="dir ${c.outgoing ? "out" : "in"}">${c.outgoing ? "↗" : "↙"}</span>
        <span class="peer">${escape(c.peerName)}</span><span class="muted">${escape(what)}</span><span class="when">${when}</span></li>`;
    })
    .join("");
  const pushes = state.pushes
    .map((p, i) => {
      const when = new Date(p.at).toLocaleTimeString(language === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit" });
      const open = p.clickAction ? `<button class="link" data-action="open-push" data-index="${i}">${tr("home.openMessage")}</button>` : "";
      return `<li><div><b>${escape(p.title)}</b> <span class="when">${when}</span></div><div>${escape(p.body)}</div>${open}</li>`;
    })
    .join("");
  const online = state.online
    ? `<span class="status online"></span>${tr("home.online")}`
    : state.offlineRetrySec !== undefined
      ? `<span class="status offline"></span>${tr("home.offline", { sec: state.offlineRetrySec })}`
      : "";
  return `${header()}
  <main class="home">
    <section class="card profiles"><h2>${tr("home.profiles")}</h2><ul>${profiles}</ul>
      ${profile && overview && overview.profiles.length > 1 ? `<button class="link danger" data-action="remove">${tr("home.remove")}</button>` : ""}
    </section>
    <section class="main-col">
      ${noticeText ? `<div class="notice">${escape(noticeText)}</div>` : ""}
      <div class="card phone"><div class="label">${tr("home.phone")}</div>
        <div class="number" data-testid="phone">${profile?.phoneNumber ? escape(profile.phoneNumber) : `<span class="muted small">${tr("home.noPhone")}</span>`}</div>
        <div class="online">${online}</div></div>
      ${pushes ? `<div class="card pushes" data-testid="pushes"><h2>${tr("home.messages")}</h2><ul>${pushes}</ul></div>` : ""}
      <div class="actions">
        <button class="primary" data-action="video-test">${tr("home.videoTest")}</button>
        <button data-action="effects">${tr("home.effects")}</button>
        <button data-action="devices">${tr("home.devices")}</button>
      </div>
      ${showEffects ? effectsPanel() : ""}
      ${showDevices ? devicePanel() : ""}
      <div class="card"><h2>${tr("home.recent")}</h2>${recent ? `<ul class="recent">${recent}</ul>` : `<p class="muted">${tr("home.noRecent")}</p>`}</div>
      <p class="muted small">${tr("home.hint")}</p>
      ${overview ? `<p class="muted small" data-testid="secrets">${tr(overview.secrets === "keychain" ? "home.secretsKeychain" : "home.secretsFile")}</p>` : ""}
    </section>
  </main>`;
}

function option(group: string, value: string, label: string, chosen: boolean, preview?: string | null): string {
  const picture = preview ? `<img src="${convertFileSrc(preview)}" alt="">` : "";
  return `<button class="choice ${chosen ? "chosen" : ""}" data-action="effect" data-group="${group}" data-value="${escape(value)}">${picture}<span>${escape(label)}</span></button>`;
}

const COLOURS = ["#2e7d32", "#1565c0", "#f5f5f5"];

// Icons drawn inline: no icon font or emoji font is needed on the machine.
const ICONS = {
  mic: '<path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z"/>',
  micOff: '<path d="M19 11h-2a5 5 0 0 1-.6 2.4l1.5 1.5A7 7 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.9-.7L15 10.2zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.5 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.6-1.5l3.1 3.1 1.3-1.3z"/>',
  camera: '<path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z"/>',
  cameraOff: '<path d="M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4-.1.5-.2l3.2 3.2 1.3-1.3z"/>',
  hangup: '<path d="M12 9c-1.6 0-3.2.3-4.6.7v3.1c0 .4-.2.7-.6.9-.9.5-1.8 1.1-2.5 1.8-.2.2-.4.3-.7.3s-.5-.1-.7-.3L.3 13c-.2-.2-.3-.4-.3-.7s.1-.5.3-.7C3.3 8.8 7.4 7 12 7s8.7 1.8 11.7 4.6c.2.2.3.4.3.7s-.1.5-.3.7l-2.5 2.5c-.2.2-.4.3-.7.3s-.5-.1-.7-.3c-.8-.7-1.6-1.3-2.5-1.8-.3-.2-.6-.5-.6-.9V9.7C15.2 9.3 13.6 9 12 9z"/>',
  answer: '<path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z"/>',
};

function icon(name: keyof typeof ICONS): string {
  return `<svg viewBox="0 0 24 24" width="28" height="28" fill="currentColor" aria-hidden="true">${ICONS[name]}</svg>`;
}

function devicePicker(kind: "camera" | "microphone" | "speaker", names: string[], chosen: string | null): string {
  // A remembered device that is not connected now stays listed, so the choice is not lost silently.
  const all = chosen && !names.includes(chosen) ? [...names, chosen] : names;
  const options = [`<option value="">${tr("devices.systemDefault")}</option>`, ...all.map((n) => `<option value="${escape(n)}" ${n === chosen ? "selected" : ""}>${escape(n)}</option>`)].join("");
  return `<label class="picker"><span>${tr(`devices.${kind}Label` as MessageKey)}</span><select data-device="${kind}">${options}</select></label>`;
}

function devicePanel(): string {
  if (!deviceList) return `<div class="card devices-panel"><p class="muted">…</p></div>`;
  const c = deviceList.chosen;
  const toggle = (key: "noiseSuppression" | "gainControl") =>
    `<label class="toggle"><input type="checkbox" data-device="${key}" ${c[key] ? "checked" : ""}><span>${tr(`devices.${key}` as MessageKey)}</span></label>`;
  return `<div class="card devices-panel"><h2>${tr("devices.title")}</h2>
    ${devicePicker("camera", deviceList.cameras, c.camera)}
    ${devicePicker("microphone", deviceList.microphones, c.microphone)}
    ${devicePicker("speaker", deviceList.speakers, c.speaker)}
    <div class="toggles">${toggle("noiseSuppression")}${toggle("gainControl")}</div>
    <button data-action="speaker-test">${tr("devices.speakerTest")}</button>
    <p class="muted small" data-bind="speaker-test">${escape(speakerTestText())}</p>
    <p class="muted small">${tr("devices.appliesNext")}</p></div>`;
}

/// The microphone's level as the engine sends it, −60…0 dBFS across the bar.
function micMeter(): string {
  return `<div class="meter" title="${tr("devices.micLevel")}"><span class="meter-label" data-bind="meter-label">${tr("devices.micLevel")}</span><div class="meter-bar"><i data-meter="mic"></i></div></div>`;
}

function effectsPanel(): string {
  if (!catalogue) return `<div class="card effects"><p class="muted">…</p></div>`;
  const chosen = catalogue.chosen;
  const wallpapers = [
    option("wallpaper", "", tr("effects.none"), !chosen.wallpaper),
    option("wallpaper", "blur", tr("effects.blur"), chosen.wallpaper === "blur"),
    ...COLOURS.map((c) => option("wallpaper", `colour:${c}`, tr("effects.colour"), chosen.wallpaper === `colour:${c}`).replace("<span>", `<i class="swatch" style="background:${c}"></i><span>`)),
    ...catalogue.wallpapers.map((w) => option("wallpaper", w.id, w.label, chosen.wallpaper === w.id, w.preview)),
  ].join("");
  const mosaic = [
    option("mosaic", "", tr("effects.none"), !chosen.mosaic),
    option("mosaic", "faces", tr("effects.mosaicFaces"), chosen.mosaic === "faces"),
    option("mosaic", "whole", tr("effects.mosaicWhole"), chosen.mosaic === "whole"),
  ].join("");
  const filters = [
    option("faceFilter", "", tr("effects.none"), !chosen.faceFilter),
    ...catalogue.faceFilters.map((f) => option("faceFilter", f.id, f.label, chosen.faceFilter === f.id, f.preview)),
  ].join("");
  const empty = catalogue.wallpapers.length === 0 && catalogue.faceFilters.length === 0;
  const refused = state.refused.length ? `<p class="warn">${tr("effects.refused", { list: state.refused.join(" / ") })}</p>` : "";
  return `<div class="card effects"><h2>${tr("effects.title")}</h2>
    <h3>${tr("effects.wallpaper")}</h3><div class="choices">${wallpapers}</div>
    <h3>${tr("effects.mosaic")}</h3><div class="choices">${mosaic}</div>
    <h3>${tr("effects.faceFilter")}</h3><div class="choices">${filters}</div>
    ${empty ? `<p class="muted small">${tr("effects.noFiles")}</p>` : ""}${refused}
    <p class="muted small">${tr("test.saved")}</p></div>`;
}

function qualityBlock(): string {
  const charts: [string, MessageKey][] = [
    ["rtt", "quality.rtt"],
    ["loss", "quality.loss"],
    ["kbps", "quality.bitrate"],
    ["fps", "quality.fps"],
  ];
  return `<div class="card quality"><div class="quality-head"><span data-bind="verdict"></span><span class="muted" data-bind="route"></span></div>
    <div class="charts">${charts
      .map(([id, key]) => `<div class="chart"><div class="chart-label">${tr(key)} <b data-bind="q-${id}">—</b></div><canvas data-chart="${id}"></canvas></div>`)
      .join("")}</div></div>`;
}

function videoTestScreen(): string {
  return `${header()}
  <main class="test">
    <section class="test-main">
      <h1>${tr("test.title")}</h1>
      <div class="pair">
        <figure><canvas data-video="local" class="video empty"></canvas><figcaption>${tr("test.own")}</figcaption></figure>
        <figure><canvas data-video="remote" class="video empty"></canvas><figcaption>${tr("test.returned")}</figcaption></figure>
      </div>
      <p class="muted small devices" data-bind="devices"></p>
      ${micMeter()}
      ${qualityBlock()}
      <button class="danger wide" data-action="hangup">${tr("test.end")}</button>
    </section>
    <aside>${devicePanel()}${effectsPanel()}</aside>
  </main>`;
}

function avatar(call: CallView): string {
  const initial = `<div class="avatar">${escape([...call.peerName][0] ?? "?")}</div>`;
  // A picture that cannot load gives way to the initial (see render()).
  return call.peerImageUrl ? `<img class="avatar" src="${escape(call.peerImageUrl)}" alt="" data-initial="${escape([...call.peerName][0] ?? "?")}">` : initial;
}

function outgoingScreen(call: CallView): string {
  return `<main class="dark center">
    ${avatar(call)}
    <div class="peer-name">${escape(call.peerName)}</div>
    <div class="status-line" data-bind="ringing">${tr("outgoing.preparing")}</div>
    <button class="round danger" data-action="hangup" title="${tr("outgoing.cancel")}">${icon("hangup")}</button>
    <div class="under">${tr("outgoing.cancel")}</div>
  </main>`;
}

function incomingScreen(call: CallView): string {
  return `<main class="dark center">
    <div class="status-line">${tr("incoming.title")}</div>
    ${avatar(call)}
    <div class="peer-name">${escape(call.peerName)}</div>
    <div class="buttons">
      <div><button class="round danger" data-action="decline" title="${tr("incoming.decline")}">${icon("hangup")}</button><div class="under">${tr("incoming.decline")}</div></div>
      <div><button class="round ok" data-action="answer" title="${tr("incoming.answer")}">${icon("answer")}</button><div class="under">${tr("incoming.answer")}</div></div>
    </div>
  </main>`;
}

function protectionText(call: CallView): string {
  if (recordingAllowed(call)) return tr("protection.allowed");
  return windowProtected ? tr("protection.blocked") : tr("protection.watermark");
}

function inCallScreen(call: CallView): string {
  return `<main class="call">
    <canvas data-video="remote" class="video remote empty"></canvas>
    <canvas data-video="local" class="video own empty"></canvas>
    <div class="call-top">
      <div><div class="peer-name small">${escape(call.peerName)}</div><div data-bind="elapsed"></div></div>
      <div class="right"><div data-bind="time-left"></div><div data-bind="verdict"></div></div>
    </div>
    <div class="protection">${protectionText(call)}</div>
    <div class="warn floating devices" data-bind="missing-devices"></div>
    ${state.refused.length ? `<div class="warn floating">${tr("effects.refused", { list: state.refused.join(" / ") })}</div>` : ""}
    <div class="call-meter">${micMeter()}</div>
    <div class="toolbar">
      <button class="round ${switches.microphone ? "" : "off"}" data-action="mic" title="${switches.microphone ? tr("incall.mute") : tr("incall.unmute")}">${icon(switches.microphone ? "mic" : "micOff")}</button>
      <button class="round ${switches.camera ? "" : "off"}" data-action="camera" title="${switches.camera ? tr("incall.cameraOff") : tr("incall.cameraOn")}">${icon(switches.camera ? "camera" : "cameraOff")}</button>
      <button class="round danger" data-action="hangup" title="${tr("incall.hangup")}">${icon("hangup")}</button>
    </div>
  </main>`;
}

function endedScreen(): string {
  if (state.screen.kind !== "ended") return "";
  const s = state.screen;
  return `${header()}<main class="center">
    <h1>${tr("ended.title")}</h1>
    ${s.peerName ? `<div class="peer-name dark-text">${escape(s.peerName)}</div>` : ""}
    <p data-testid="reason">${escape(s.message ?? (endedByMe(s.reason, s.outgoing) ? tr("reason.self") : reasonText(language, s.reason)))}</p>
    ${s.talkSec > 0 ? `<p class="muted">${tr("ended.talk", { time: duration(language, s.talkSec) })}</p>` : ""}
    ${closingButtons()}
  </main>`;
}

/// The reason is this side's own hang-up.
function endedByMe(reason: number, outgoing: boolean): boolean {
  return (reason === 1 && outgoing) || (reason === 2 && !outgoing);
}

function closingButtons(): string {
  return `<div class="buttons">
    ${state.returnUrl ? `<button class="primary" data-action="return">${tr("ended.return")}</button>` : ""}
    <button data-action="home">${tr("ended.home")}</button></div>`;
}

function messageScreen(title: string, body: string, detail?: string): string {
  return `${header()}<main class="center"><div class="card message">
    <h1>${escape(title)}</h1><p>${escape(body)}</p>${detail ? `<p class="muted small">${escape(detail)}</p>` : ""}
    ${closingButtons()}</div></main>`;
}

/// A link from outside, named by its site and what it would do, before it runs.
function confirmScreen(): string {
  if (state.screen.kind !== "confirmLink") return "";
  const s = state.screen;
  const body =
    s.function === "makecall"
      ? tr("confirm.makecall", { callee: s.callee ?? "", kind: tr(s.video ? "confirm.video" : "confirm.voice") })
      : tr(`confirm.${s.function}` as MessageKey);
  return `${header()}<main class="center"><div class="card message confirm">
    <h1>${escape(tr("confirm.title", { site: s.site }))}</h1><p>${escape(body)}</p>
    <p class="muted small">${escape(tr("confirm.hint"))}</p>
    <div class="buttons">
      <button class="primary" data-action="confirm-link">${tr("confirm.yes")}</button>
      <button data-action="decline-link">${tr("confirm.no")}</button>
    </div></div></main>`;
}

function workingScreen(): string {
  if (state.screen.kind !== "working") return "";
  const s = state.screen;
  const label = {
    activate: tr("working.activate"),
    download: tr("working.download"),
    call: tr("working.call"),
    live: tr("working.live"),
  }[s.task];
  let result = "";
  if (s.result?.startsWith("ok:")) result = tr("working.downloaded", { count: s.result.slice(3) });
  if (s.result?.startsWith("failed:")) result = tr("working.downloadFailed", { count: s.result.slice(7) });
  const bar = s.task === "download" ? `<div class="progress"><div data-bind="progress" style="width:${Math.round((s.progress ?? 0) * 100)}%"></div></div>` : "";
  return `${header()}<main class="center">
    ${result ? "" : `<div class="spinner"></div>`}<p>${result ? escape(result) : label}</p>${bar}
    ${result ? closingButtons() : ""}</main>`;
}

// ---- lives ----------------------------------------------------------------

/// When this window last sent a comment or a gift (the page's clock), for
/// the partner's nextAvailableCommentTime / nextAvailableGiftTime.
let lastComment: number | undefined;
let lastGift: number | undefined;

function liveScreen(live: LiveView): string {
  const broadcaster = live.role === "broadcaster";
  const stage = live.audioOnly
    ? `<div class="radio"><div class="avatar">${escape([...live.liverName][0] ?? "?")}</div><p>${tr("live.radio")}</p></div>`
    : `<canvas data-video="${broadcaster ? "local" : "remote"}" class="video stage empty"></canvas>`;
  const badge = (live.phase === "onAir" ? `<span class="badge on-air">${tr("live.onAir")}</span>` : `<span class="badge">${tr("live.readyBadge")}</span>`)
    + (live.recorded ? ` <span class="badge recorded">● ${tr("live.recorded")}</span>` : "");
  let buttons: string;
  if (broadcaster && live.phase === "ready") {
    buttons = `<button class="primary big" data-action="live-start">${tr("live.start")}</button>
      <button class="ghost light" data-action="hangup">${tr("live.cancel")}</button>`;
  } else if (broadcaster) {
    buttons = `<button class="round ${switches.microphone ? "" : "off"}" data-action="mic" title="${switches.microphone ? tr("incall.mute") : tr("incall.unmute")}">${icon(switches.microphone ? "mic" : "micOff")}</button>
      <button class="round ${switches.camera ? "" : "off"}" data-action="camera" title="${switches.camera ? tr("incall.cameraOff") : tr("incall.cameraOn")}">${icon(switches.camera ? "camera" : "cameraOff")}</button>
      <button class="danger" data-action="hangup">${tr("live.end")}</button>`;
  } else {
    const greet = live.greeting
      ? `<button class="ghost light" data-action="live-item" data-category="${escape(live.greeting.category)}" data-item="${escape(live.greeting.itemNo)}">${tr("live.greet")}</button>`
      : "";
    buttons = `${greet}<button class="ghost light" data-action="live-favorite">${live.favorite ? tr("live.favorited") : tr("live.favorite")}</button>
      <button class="danger" data-action="hangup">${tr("live.leave")}</button>`;
  }
  const side = broadcaster ? broadcasterPanel(live) : viewerPanel(live);
  return `<main class="live">
    <section class="live-stage">
      ${stage}
      <div class="live-top">
        <div><div class="peer-name small">${escape(live.title || live.liverName)}</div><div class="muted-light">${escape(live.liverName)}${live.paid ? ` · ${tr("live.paid")}` : ""}</div></div>
        <div class="right">${badge} <span data-bind="live-viewers"></span><div data-bind="live-elapsed"></div><div data-bind="live-time-left"></div></div>
      </div>
      ${broadcaster && live.phase === "ready" ? `<div class="live-hint">${tr("live.ready")}</div>` : ""}
      <div class="gift-play" data-fill="gift-play"></div>
      <div class="live-notice" data-fill="live-notice"></div>
      <div class="live-messages" data-fill="live-messages"></div>
      ${live.specialUrls.length ? `<div class="special-urls">${live.specialUrls
        .map((u) => `<button class="banner" data-action="open-banner" data-url="${escape(u.linkUrl ?? "")}"><img src="${escape(u.imageUrl)}" alt=""></button>`)
        .join("")}</div>` : ""}
      <div class="comments" data-fill="comments" style="width:calc((100% - 32px) * ${live.appearance.comment_width_percent / 100});height:${live.appearance.comment_height_percent}%"></div>
      <div class="toolbar">${buttons}</div>
    </section>
    <aside class="live-side">
      <div class="comment-form">
        <input data-input="comment" maxlength="200" placeholder="${escape(live.commentGuide ?? tr("live.commentPlaceholder"))}">
        <button class="primary" data-action="live-comment">${tr("live.send")}</button>
      </div>
      ${side}
    </aside>
  </main>`;
}

function broadcasterPanel(live: LiveView): string {
  const paid = live.paid || live.phase !== "onAir"
    ? ""
    : `<div class="paid-switch"><input data-input="price" type="number" min="1" value="100" aria-label="${tr("live.unitPrice")}">
        <button data-action="live-paid">${tr("live.paidSwitch")}</button></div>`;
  return `<div class="card ranking"><h3>${tr("live.ranking")}</h3><ul data-fill="ranking"></ul></div>${paid}`;
}

function viewerPanel(live: LiveView): string {
  const gifts = live.gifts
    .map(
      (g) => `<button class="gift" data-action="live-item" data-category="${escape(g.category)}" data-item="${escape(g.item_no)}">
        <span>${escape(g.name)}</span><small>${g.point > 0 ? tr("live.points", { points: g.point }) : tr("live.free")}</small></button>`,
    )
    .join("");
  const buy = live.quickPayments
    .map((q) => `<button data-action="live-pay" data-amount="${q.paymentAmount}">${escape(q.pointText)}</button>`)
    .join("");
  return `${gifts ? `<div class="card"><h3>${tr("live.gifts")}</h3><div class="gifts">${gifts}</div></div>` : ""}
    ${buy ? `<div class="card"><h3>${tr("live.buyPoints")}</h3><div class="buy">${buy}</div></div>` : ""}`;
}

function commentsHtml(live: LiveView): string {
  if (live.comments.length === 0) return `<p class="muted small">${tr("live.noComments")}</p>`;
  const a = live.appearance;
  return live.comments
    .map((c) => {
      const { frame, wording } = lineKind(live.role, c);
      const values = placeholderValues(c, live.liverName, (points) => tr("live.points", { points }));
      const pieces = linePieces(a, wording, tr(`wording.${wording}` as MessageKey), values)
        .map((p) => {
          const style = [p.color ? `color:${p.color}` : "", p.fontSize ? `font-size:${p.fontSize}px` : ""].filter(Boolean).join(";");
          const styled = style ? ` style="${style}"` : "";
          if (p.placeholder === "Tran.UserName") return `<b class="${c.fromBroadcaster ? "liver" : ""}"${styled}>${escape(p.text)}</b>`;
          return p.placeholder ? `<span${styled}>${escape(p.text)}</span>` : escape(p.text);
        })
        .join("");
      const paid = c.kind === "comment" && c.point > 0 ? ` <span class="pt">${tr("live.points", { points: c.point })}</span>` : "";
      // serviceOptions 1: the writer's picture; otherwise (or without one) an initial.
      const size = a.comment_image_px;
      const picture = a.profile_images && c.image && /^https?:\/\//.test(c.image)
        ? `<img class="face" src="${escape(c.image)}" alt="" style="width:${size}px;height:${size}px" onerror="this.remove()">`
        : c.kind === "paid" ? "" : `<span class="face initial" style="width:${size}px;height:${size}px;font-size:${Math.round(size * 0.5)}px">${escape([...c.name][0] ?? "?")}</span>`;
      return `<div class="comment ${c.kind}" style="${frameCss(a, frame)}">${picture}<span class="line">${pieces}${paid}</span></div>`;
    })
    .join("");
}

function rankingHtml(live: LiveView): string {
  if (live.ranking.length === 0) return `<li class="muted small">${tr("live.noViewers")}</li>`;
  return live.ranking
    .map(
      (v, i) => `<li><span class="rank">${i + 1}</span><span class="peer">${escape(v.name)}</span>
        <span class="pt">${tr("live.points", { points: v.points })}</span>
        <button class="link danger" data-action="live-remove" data-user="${escape(v.user_id)}">${tr("live.remove")}</button></li>`,
    )
    .join("");
}

function giftPlayHtml(live: LiveView, now: number): string {
  const playing = live.playing && live.playing.until > now ? live.playing : undefined;
  if (!playing) return "";
  // In the video already when the broadcaster composites it (§5.4.1).
  const picture = playing.item.file && catalogue && !live.apngOnVideo ? `<img src="${convertFileSrc(`${catalogue.dir}/${playing.item.file}`)}" alt="" onerror="this.remove()">` : "";
  return `<div class="gift-pop">${picture}<span>${escape(tr("live.giftFrom", { name: playing.from, item: playing.item.name }))}</span></div>`;
}

function liveEndedScreen(ended: LiveEnded): string {
  const key = `liveReason.${ended.reason}` as MessageKey;
  // Ending it oneself needs no reason under the title that says so.
  const ownDoing =
    (ended.role === "broadcaster" && ended.reason === "broadcaster_ended") || (ended.role === "viewer" && ended.reason === "viewer_left");
  const reason = ended.message ?? (ownDoing ? "" : key in messages[language] ? tr(key) : tr("error.title"));
  let watched = "";
  if (ended.liveSec !== undefined && ended.role === "broadcaster") {
    watched = `<p class="muted">${tr("liveEnded.onAir", { time: duration(language, ended.liveSec) })}</p>`;
  } else if (ended.liveSec !== undefined) {
    watched = `<p class="muted">${tr("liveEnded.watched", { time: duration(language, ended.liveSec), points: ended.point ?? 0 })}</p>`;
  }
  return `${header()}<main class="center">
    <h1>${tr(ended.role === "broadcaster" ? "liveEnded.broadcaster" : "liveEnded.viewer")}</h1>
    ${reason ? `<p data-testid="reason">${escape(reason)}</p>` : ""}${watched}
    ${closingButtons()}
  </main>`;
}

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
  bind("live-elapsed", since === undefined ? "" : tr(elapsedKey, { time: duration(language, (now - since) / 1000) }));
  bind("live-time-left", live.timeLeftSec === undefined || live.timeLeftSec === null ? "" : tr("live.timeLeft", { time: duration(language, live.timeLeftSec) }));
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
  const commentWait = waitLeft(lastComment, live.nextCommentMs, now);
  root.querySelectorAll<HTMLButtonElement>('[data-action="live-comment"]').forEach((b) => (b.disabled = commentWait > 0 || live.phase !== "onAir"));
  const giftWait = waitLeft(lastGift, live.nextGiftMs, now);
  root.querySelectorAll<HTMLButtonElement>('[data-action="live-item"]').forEach((b) => (b.disabled = giftWait > 0 || live.phase !== "onAir"));
}

async function liveButton(button: Record<string, unknown>): Promise<void> {
  await invoke("live_action", { button });
}

function screenHtml(): string {
  const s = state.screen;
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
  if (!overview) return;
  const call = state.screen.kind === "inCall" ? state.screen.call : undefined;
  const userId = activeProfile()?.userId ?? "";
  const live = state.screen.kind === "live" ? state.screen.live : undefined;
  // Where the window cannot be kept out of captures, the other side's picture carries a watermark.
  const forbidden = (call && !recordingAllowed(call)) || (live?.role === "viewer" && !live.recordingAllowed);
  const watermark = forbidden && !windowProtected ? () => `${userId}  ${new Date().toLocaleString("ja-JP")}` : undefined;
  root.querySelectorAll<HTMLCanvasElement>("canvas[data-video]").forEach((canvas) => {
    const stream = canvas.dataset.video as "local" | "remote";
    const view = new VideoView(canvas, stream, overview!.feed, stream === "remote" ? watermark : undefined);
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
  const s = state.screen;
  const last = state.quality[state.quality.length - 1];
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
  const values = series(state.quality);
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
  if (state.devices) {
    bind("devices", devicesText(language, state.devices).join(" · "));
    // In a call only a missing device is worth the space.
    bind("missing-devices", devicesText(language, state.devices, true).join(" · "));
  }
  const level = switches.microphone ? (state.micLevelDbfs ?? -120) : -120;
  root.querySelectorAll<HTMLElement>('[data-meter="mic"]').forEach((bar) => {
    bar.style.width = `${Math.round(Math.min(1, Math.max(0, (level + 60) / 60)) * 100)}%`;
  });
  bind("meter-label", switches.microphone ? tr("devices.micLevel") : tr("devices.muted"));
  bind("speaker-test", speakerTestText());
  if (s.kind === "outgoing") {
    const left = ringingLeft(s.call, now);
    bind("ringing", left === undefined ? tr("outgoing.preparing") : tr("outgoing.ringing", { sec: left }));
  }
  if (s.kind === "inCall") {
    const elapsed = s.call.connectedAt === undefined ? 0 : (now - s.call.connectedAt) / 1000;
    bind("elapsed", tr("incall.elapsed", { time: duration(language, elapsed) }));
    const left = s.call.timeLeftSec;
    bind("time-left", left === undefined ? "" : left === null ? tr("incall.paidByOther") : tr("incall.timeLeft", { time: duration(language, left) }));
  }
  if (s.kind === "live") patchLive(s.live, now);
  if (s.kind === "working") {
    const bar = root.querySelector<HTMLElement>('[data-bind="progress"]');
    if (bar) bar.style.width = `${Math.round((s.progress ?? 0) * 100)}%`;
  }
}

/// What rebuilds a live screen (its buttons and palette), beyond its kind.
function liveKey(): string {
  if (state.screen.kind !== "live") return "";
  const live = state.screen.live;
  return `${live.phase}:${live.paid}:${live.gifts.length}:${live.favorite}`;
}

function render(rebuild = false): void {
  const key = `${state.screen.kind}:${language}:${showEffects}:${showDevices}:${liveKey()}`;
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
  if (state.screen.kind === "incoming") ringer.start();
  else ringer.stop();
}

// ---- actions ---------------------------------------------------------------

async function chooseEffect(group: string, value: string): Promise<void> {
  if (!catalogue) return;
  const chosen = { ...catalogue.chosen, [group]: value || null };
  catalogue = { ...catalogue, chosen };
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
  if (!field || !deviceList) return;
  const value = input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value || null;
  deviceList = { ...deviceList, chosen: { ...deviceList.chosen, [field]: value } };
  await invoke("set_devices", { settings: deviceList.chosen });
});

root.addEventListener("click", async (event) => {
  const target = (event.target as HTMLElement).closest<HTMLElement>("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  switch (action) {
    case "language":
      language = language === "ja" ? "en" : "ja";
      localStorage.setItem("language", language);
      document.documentElement.lang = language;
      render(true);
      break;
    case "switch":
      await invoke("switch_profile", { site: target.dataset.site });
      await refresh();
      break;
    case "remove": {
      const site = overview?.active ?? "";
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
      showEffects = !showEffects;
      if (showEffects) await loadCatalogue();
      render(true);
      break;
    case "devices":
      showDevices = !showDevices;
      if (showDevices) await loadDevices();
      render(true);
      break;
    case "speaker-test":
      try {
        const name = await invoke<string>("speaker_test", { speaker: deviceList?.chosen.speaker ?? null });
        speakerTest = { played: name };
      } catch (why) {
        speakerTest = { failed: String(why) };
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
      switches = action === "mic" ? { ...switches, microphone: !switches.microphone } : { ...switches, camera: !switches.camera };
      await invoke("set_switches", switches);
      render(true);
      break;
    case "return":
      if (state.returnUrl) await openUrl(state.returnUrl);
      break;
    case "live-start":
      await liveButton({ kind: "start" });
      break;
    case "live-comment": {
      const input = root.querySelector<HTMLInputElement>('[data-input="comment"]');
      const text = input?.value.trim() ?? "";
      if (!text || !input) break;
      lastComment = performance.now();
      input.value = "";
      await liveButton({ kind: "comment", text });
      break;
    }
    case "live-item":
      lastGift = performance.now();
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
      if (state.screen.kind === "live") {
        const on = !state.screen.live.favorite;
        state = { ...state, screen: { kind: "live", live: { ...state.screen.live, favorite: on } } };
        await liveButton({ kind: "favorite", on });
        render(true);
      }
      break;
    case "open-push": {
      const page = state.pushes[Number(target.dataset.index)]?.clickAction;
      if (page) await invoke("open_page", { target: page });
      break;
    }
    case "home":
      state = { ...state, screen: { kind: "home" }, returnUrl: null };
      await refresh();
      break;
  }
});

async function onEngineEvent(payload: EngineEvent): Promise<void> {
  const before = state.screen.kind;
  state = reduce(state, payload, performance.now());
  const after = state.screen.kind;
  const screen = state.screen;
  if (screen.kind === "inCall" && before !== "inCall") {
    // Keep the call out of screen captures unless the partner allows recording.
    windowProtected = await invoke<boolean>("protect_window", { protect: !recordingAllowed(screen.call) });
    switches = { microphone: true, camera: true };
    await invoke("set_switches", switches);
  }
  if (before === "inCall" && after !== "inCall") await invoke("protect_window", { protect: false });
  if (screen.kind === "live" && before !== "live") {
    // A viewer's window is kept out of captures unless the partner allows recording (serviceOptions 2).
    const protect = screen.live.role === "viewer" && !screen.live.recordingAllowed;
    windowProtected = await invoke<boolean>("protect_window", { protect });
    switches = { microphone: true, camera: true };
    await invoke("set_switches", switches);
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
  document.documentElement.lang = language;
  await listen<EngineEvent>("nexmile://engine", (event) => void onEngineEvent(event.payload));
  await refresh();
  installFeedBench(() => overview?.feed);
  setInterval(patch, 250);
}

void start();
