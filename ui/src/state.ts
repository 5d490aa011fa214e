// What the window shows, as a pure function of the engine's events: every
// screen change happens in reduce(), so it is tested without a window.

import type { CallDetails, EngineEvent, QualityReport } from "./generated/types";
import type { Devices } from "./i18n";
import { type LiveEnded, type LiveView, liveEnded, reduceLive } from "./live";

export type { EngineEvent };

export interface ProfileView {
  site: string;
  userId: string;
  name: string;
  phoneNumber?: string | null;
  enableDownloadEffect: boolean;
}

export interface CallRecord {
  endedAt: number;
  outgoing: boolean;
  peerName: string;
  video: boolean;
  talkSec: number;
  reason: number;
}

export interface Overview {
  active: string;
  profiles: ProfileView[];
  recentCalls: CallRecord[];
  feed: { port: number; token: string };
  busy: boolean;
  online: boolean;
  /// Where the app keeps its tokens.
  secrets: "keychain" | "encryptedFile";
}

/// One second of a connection's quality, as the engine measured it.
export type Quality = QualityReport;

/// The call option bit that allows recording (§4.3.1 callOption 8).
export const RECORDING_ALLOWED = 8;

export interface CallView {
  outgoing: boolean;
  token?: string;
  peerName: string;
  peerImageUrl?: string;
  video: boolean;
  options: number;
  ringTimeoutSec: number;
  /// Milliseconds (the page's clock) when ringing started / the call connected.
  ringingSince?: number;
  connectedAt?: number;
  timeLeftSec?: number | null;
  payerIsOther?: boolean;
  /// The media path went silent and has not come back yet.
  reconnecting?: boolean;
}

export type Screen =
  | { kind: "home"; notice?: string }
  | { kind: "linkError"; message: string; parameter?: string | null }
  /// A link opened from outside that rings, spends, films or logs in: asked first.
  | { kind: "confirmLink"; function: string; site: string; callee?: string | null; video: boolean }
  | { kind: "working"; task: "activate" | "download" | "call" | "live"; progress?: number; result?: string }
  | { kind: "live"; live: LiveView }
  | { kind: "liveEnded"; ended: LiveEnded }
  | { kind: "videoTest"; refused: string[] }
  | { kind: "outgoing"; call: CallView }
  | { kind: "incoming"; call: CallView }
  | { kind: "inCall"; call: CallView; refused: string[] }
  | { kind: "ended"; reason: number; talkSec: number; peerName: string; outgoing: boolean; message?: string | null }
  | { kind: "refused"; message: string };

export interface AppState {
  screen: Screen;
  /// Where "サイトへ戻る" leads after the current link, if the link gave one.
  returnUrl?: string | null;
  online: boolean;
  offlineRetrySec?: number;
  quality: Quality[];
  /// Effects that the partner does not allow in this call, said by the engine.
  refused: string[];
  /// The camera, microphone and speaker of the running test or call.
  devices?: Devices;
  /// The microphone's level after processing, dBFS (the meter), while a test or call runs.
  micLevelDbfs?: number;
  /// The partner's push messages (§7.1), newest first.
  pushes: PushView[];
}

export interface PushView {
  title: string;
  body: string;
  /// The page the message leads to.
  clickAction?: string | null;
  /// When it arrived (ms since the epoch).
  at: number;
}

/// How many push messages the home screen keeps.
export const PUSH_LIMIT = 10;

/// Screens a clicked notification may leave: nothing is running on them.
const IDLE_SCREENS: Screen["kind"][] = ["home", "ended", "refused", "linkError", "confirmLink"];

export const initialState: AppState = {
  screen: { kind: "home" },
  online: false,
  quality: [],
  refused: [],
  pushes: [],
};

/// How many seconds of quality the plot keeps.
export const QUALITY_WINDOW = 60;

function callView(details: CallDetails, outgoing: boolean): CallView {
  return {
    outgoing,
    token: details.call_token,
    peerName: details.peer_name,
    peerImageUrl: details.peer_image_url ?? undefined,
    video: details.video,
    options: details.options,
    ringTimeoutSec: details.ring_timeout_sec,
  };
}

function currentCall(screen: Screen): CallView | undefined {
  return screen.kind === "outgoing" || screen.kind === "incoming" || screen.kind === "inCall"
    ? screen.call
    : undefined;
}

/// The next state after one engine event; `now` is the page's clock in ms.
export function reduce(state: AppState, e: EngineEvent, now: number): AppState {
  const screen = state.screen;
  switch (e.event) {
    case "online":
      return { ...state, online: true, offlineRetrySec: undefined };
    case "offline":
      return { ...state, online: false, offlineRetrySec: e.retryInSec };
    case "link.invalid":
      return {
        ...state,
        screen: { kind: "linkError", message: e.message, parameter: e.parameter },
      };
    case "link.confirm":
      return {
        ...state,
        screen: {
          kind: "confirmLink",
          function: e.function,
          site: e.site,
          callee: e.callee ?? null,
          video: e.video,
        },
      };
    case "link.declined":
      return screen.kind === "confirmLink" ? { ...state, screen: { kind: "home" } } : state;
    case "link.opened": {
      const returnUrl = e.returnUrl ?? null;
      const base = { ...state, returnUrl, quality: [], refused: [], devices: undefined, micLevelDbfs: undefined };
      switch (e.function) {
        case "activateExUser":
          return { ...base, screen: { kind: "working", task: "activate" } };
        case "videoSetting":
          return e.download
            ? { ...base, screen: { kind: "working", task: "download", progress: 0 } }
            : { ...base, screen: { kind: "videoTest", refused: [] } };
        case "makecall":
          return { ...base, screen: { kind: "working", task: "call" } };
        case "broadcastLive":
        case "viewLive":
          return { ...base, screen: { kind: "working", task: "live" } };
        default:
          return base;
      }
    }
    case "effects": {
      const refused = e.refused;
      if (screen.kind === "videoTest") return { ...state, refused, screen: { ...screen, refused } };
      return { ...state, refused };
    }
    case "effects.progress": {
      if (screen.kind !== "working") return state;
      const progress = e.total > 0 ? e.received / e.total : 1;
      return { ...state, screen: { ...screen, progress } };
    }
    case "effects.synced": {
      if (screen.kind !== "working") return state;
      const failed = e.failed.length;
      const fetched = e.downloaded.length;
      const unchanged = e.kept;
      return {
        ...state,
        screen: {
          ...screen,
          progress: 1,
          result: failed > 0 ? `failed:${failed}` : `ok:${fetched + unchanged}`,
        },
      };
    }
    case "devices":
      return {
        ...state,
        devices: { camera: e.camera, microphone: e.microphone, speaker: e.speaker },
      };
    case "microphoneLevel":
      return { ...state, micLevelDbfs: e.dbfs };
    case "quality": {
      const quality = [...state.quality, e].slice(-QUALITY_WINDOW);
      return { ...state, quality };
    }
    case "call.prepared":
      return { ...state, screen: { kind: "outgoing", call: callView(e, true) } };
    case "call.incoming":
      return {
        ...state,
        quality: [],
        screen: { kind: "incoming", call: { ...callView(e, false), ringingSince: now } },
        returnUrl: e.return_url ?? state.returnUrl,
      };
    case "call.ringing": {
      if (screen.kind !== "outgoing") return state;
      return { ...state, screen: { ...screen, call: { ...screen.call, ringingSince: now } } };
    }
    case "call.connected": {
      const call = currentCall(screen);
      if (!call) return state;
      return { ...state, screen: { kind: "inCall", call: { ...call, connectedAt: now }, refused: state.refused } };
    }
    case "media.interrupted":
    case "media.restored": {
      const reconnecting = e.event === "media.interrupted";
      if (screen.kind === "live") return { ...state, screen: { ...screen, live: { ...screen.live, reconnecting } } };
      if (screen.kind !== "inCall") return state;
      return { ...state, screen: { ...screen, call: { ...screen.call, reconnecting } } };
    }
    case "billing": {
      if (screen.kind !== "inCall") return state;
      const timeLeftSec = e.timeLeftSec ?? null;
      return { ...state, screen: { ...screen, call: { ...screen.call, timeLeftSec } } };
    }
    case "call.cancelled": {
      const call = currentCall(screen);
      return {
        ...state,
        screen: { kind: "ended", reason: -1, talkSec: 0, peerName: call?.peerName ?? "", outgoing: call?.outgoing ?? false },
      };
    }
    case "call.ended": {
      const call = currentCall(screen);
      const talkSec = e.overview?.talkingSec ?? 0;
      return {
        ...state,
        screen: {
          kind: "ended",
          reason: e.reason,
          talkSec,
          peerName: call?.peerName ?? "",
          outgoing: call?.outgoing ?? false,
          message: e.message ?? null,
        },
      };
    }
    case "refused":
      // A refusal before a call or registration began (the partner's words).
      return { ...state, screen: { kind: "refused", message: e.message } };
    case "error":
      if (screen.kind === "working" || screen.kind === "outgoing") {
        return { ...state, screen: { kind: "refused", message: e.message } };
      }
      return state;
    case "activated":
      return { ...state, screen: { kind: "home", notice: `activated:${e.site}:${e.name}` } };
    case "link.done":
      // Screens that end with their link go home; results stay until dismissed.
      if (screen.kind === "videoTest") return { ...state, screen: { kind: "home" } };
      if (screen.kind === "working" && screen.task === "download") return state;
      if (screen.kind === "working") return { ...state, screen: { kind: "home" } };
      return state;
    case "live.ended": {
      if (e.kind !== "ended") return state;
      const live = screen.kind === "live" ? screen.live : undefined;
      return { ...state, screen: { kind: "liveEnded", ended: liveEnded(live, e, now) } };
    }
    case "push": {
      const push: PushView = {
        title: e.title,
        body: e.body,
        clickAction: e.clickAction ?? null,
        at: Date.now(),
      };
      return { ...state, pushes: [push, ...state.pushes].slice(0, PUSH_LIMIT) };
    }
    case "notification.opened":
      // A push's notification leads to the home screen's messages, unless
      // a call or test runs; an incoming call's screen is already shown.
      return e.kind === "push" && IDLE_SCREENS.includes(screen.kind)
        ? { ...state, screen: { kind: "home" } }
        : state;
    case "link.busy":
      return { ...state, screen: screen.kind === "home" ? { kind: "home", notice: "busy" } : screen };
    default: {
      if (!e.event.startsWith("live.")) return state;
      const live = reduceLive(screen.kind === "live" ? screen.live : undefined, e, now);
      return live ? { ...state, screen: { kind: "live", live } } : state;
    }
  }
}

/// Seconds the caller's ringing still has, for the countdown.
export function ringingLeft(call: CallView, now: number): number | undefined {
  if (call.ringingSince === undefined) return undefined;
  return Math.max(0, Math.ceil(call.ringTimeoutSec - (now - call.ringingSince) / 1000));
}

/// Whether this call's pictures must be protected from recording.
export function recordingAllowed(call: CallView): boolean {
  return (call.options & RECORDING_ALLOWED) !== 0;
}
