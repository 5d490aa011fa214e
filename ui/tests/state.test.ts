import { describe, expect, it } from "vitest";
import type { QualityReport } from "../src/generated/types";
import { type AppState, type EngineEvent, PUSH_LIMIT, initialState, reduce, recordingAllowed, ringingLeft } from "../src/state";

const details = {
  call_token: "c1",
  peer_name: "デモサイト・山田花子",
  video: true,
  options: 7,
  ring_timeout_sec: 60,
};

/// A link starting in the window.
const linkOpened = (fn: string, site: string, more: { download?: boolean; returnUrl?: string } = {}): EngineEvent => ({
  event: "link.opened",
  function: fn,
  site,
  download: more.download ?? false,
  returnUrl: more.returnUrl ?? null,
});

/// A call's figures, as the server's overview gives them (§4.3.5).
const overview = {
  autoChargePoint: 0,
  chargePrice: 10,
  chargeUnitSec: 60,
  outsideUsagePoint: 0,
  pointPrice: 1,
  startPoint: 100,
  talkingPoint: 10,
  terminateReason: 1 as const,
  terminateTime: "2026/12/07 12:00:25",
};

/// One second of quality with the figures the test cares about.
const quality = (over: Partial<QualityReport>): EngineEvent => ({
  event: "quality",
  rttMs: null,
  lossInbound: 0,
  lossOutbound: 0,
  jitterMs: null,
  sendKbps: 0,
  receiveKbps: 0,
  sendFps: 0,
  receiveFps: 0,
  route: null,
  budgetKbps: null,
  verdict: "good",
  ...over,
});

function run(events: Array<[EngineEvent, number]>, from: AppState = initialState): AppState {
  return events.reduce((state, [event, now]) => reduce(state, event, now), from);
}

describe("an outgoing call", () => {
  it("goes from preparing to ringing to talking to ended, with the return URL kept", () => {
    const opened = run([[linkOpened("makecall", "newsite1", { returnUrl: "https://site.example/back" }), 0]]);
    expect(opened.screen).toEqual({ kind: "working", task: "call" });
    const prepared = reduce(opened, { event: "call.prepared", ...details }, 10);
    expect(prepared.screen.kind).toBe("outgoing");
    const ringing = reduce(prepared, { event: "call.ringing", callToken: "c1" }, 1000);
    if (ringing.screen.kind !== "outgoing") throw new Error("not ringing");
    expect(ringingLeft(ringing.screen.call, 1000)).toBe(60);
    expect(ringingLeft(ringing.screen.call, 16_500)).toBe(45);
    const talking = reduce(ringing, { event: "call.connected", callToken: "c1" }, 5000);
    expect(talking.screen.kind).toBe("inCall");
    const billed = reduce(talking, { event: "billing", payer: "caller", timeLeftSec: 42, usedPoints: 1 }, 6000);
    expect(billed.screen.kind === "inCall" && billed.screen.call.timeLeftSec).toBe(42);
    // A cut: the screen says 再接続中… until the path is back, and the call goes on.
    const cut = reduce(billed, { event: "media.interrupted" }, 7000);
    expect(cut.screen.kind === "inCall" && cut.screen.call.reconnecting).toBe(true);
    const back = reduce(cut, { event: "media.restored" }, 9000);
    expect(back.screen.kind === "inCall" && back.screen.call.reconnecting).toBe(false);
    expect(back.screen.kind === "inCall" && back.screen.call.connectedAt).toBe(5000);
    const ended = reduce(billed, { event: "call.ended", callToken: "c1", reason: 1, message: null, overview: { talkingSec: 20, ...overview }, media: null }, 25_000);
    expect(ended.screen).toEqual({ kind: "ended", reason: 1, talkSec: 20, peerName: details.peer_name, outgoing: true, message: null });
    expect(ended.returnUrl).toBe("https://site.example/back");
  });

  it("shows the partner's refusal in its own words", () => {
    const state = run([
      [linkOpened("makecall", "newsite1"), 0],
      [{ event: "refused", message: "ポイントが不足しています" }, 5],
    ]);
    expect(state.screen).toEqual({ kind: "refused", message: "ポイントが不足しています" });
  });
});

describe("an incoming call", () => {
  it("rings, and a caller who gives up leaves a missed call", () => {
    const ringing = reduce(initialState, { event: "call.incoming", ...details }, 0);
    expect(ringing.screen.kind).toBe("incoming");
    const cancelled = reduce(ringing, { event: "call.cancelled", callToken: "c1" }, 3000);
    expect(cancelled.screen).toMatchObject({ kind: "ended", reason: -1, peerName: details.peer_name });
  });

  it("keeps recording blocked unless the call option allows it", () => {
    const state = reduce(initialState, { event: "call.incoming", ...details }, 0);
    if (state.screen.kind !== "incoming") throw new Error("no call");
    expect(recordingAllowed(state.screen.call)).toBe(false);
    expect(recordingAllowed({ ...state.screen.call, options: 8 })).toBe(true);
  });
});

describe("links and downloads", () => {
  it("names what is wrong with a bad link", () => {
    const state = reduce(initialState, { event: "link.invalid", link: "nexmile://makecall/", code: "missing_parameter", message: "site is missing", parameter: "site" }, 0);
    expect(state.screen).toEqual({ kind: "linkError", message: "site is missing", parameter: "site" });
  });

  it("asks before a link from outside rings someone, and forgets it on no", () => {
    const asked = reduce(initialState, { event: "link.confirm", function: "makecall", site: "newsite1", callee: "airi", video: true }, 0);
    expect(asked.screen).toEqual({ kind: "confirmLink", function: "makecall", site: "newsite1", callee: "airi", video: true });
    expect(reduce(asked, { event: "link.declined", function: "makecall", site: "newsite1" }, 1).screen).toEqual({ kind: "home" });
    // Yes: the engine carries the link out and the call's screens follow.
    expect(reduce(asked, linkOpened("makecall", "newsite1"), 1).screen).toEqual({ kind: "working", task: "call" });
  });

  it("shows the download's progress and its result until dismissed", () => {
    const state = run([
      [linkOpened("videoSetting", "newsite1", { download: true }), 0],
      [{ event: "effects.progress", file: "a.png", received: 50, total: 200 }, 1],
    ]);
    expect(state.screen).toMatchObject({ kind: "working", task: "download", progress: 0.25 });
    const done = run([
      [{ event: "effects.synced", version: "3", downloaded: ["a.png", "b.png"], kept: 3, removed: [], resumed_bytes: 0, bytes_fetched: 400, refetched: [], failed: [] }, 2],
      [{ event: "link.done", function: "videoSetting", outcome: "done" }, 3],
    ], state);
    expect(done.screen).toMatchObject({ kind: "working", result: "ok:5" });
  });

  it("keeps only the last minute of quality for the plot", () => {
    let state = reduce(initialState, linkOpened("videoSetting", "s"), 0);
    expect(state.screen.kind).toBe("videoTest");
    for (let i = 0; i < 75; i += 1) state = reduce(state, quality({ rttMs: i }), i);
    expect(state.quality).toHaveLength(60);
    expect(state.quality[0].rttMs).toBe(15);
    state = reduce(state, { event: "link.done", function: "videoSetting", outcome: "done" }, 80);
    expect(state.screen.kind).toBe("home");
  });
});

describe("push messages and notifications", () => {
  const push = (n: number): EngineEvent => ({ event: "push", title: `お知らせ ${n}`, body: "本文", imageUrl: null, clickAction: n === 0 ? "https://site.example/news" : null });

  it("keeps the newest messages first, at most the limit", () => {
    const state = run(Array.from({ length: PUSH_LIMIT + 3 }, (_, n) => [push(n), n] as [EngineEvent, number]));
    expect(state.pushes).toHaveLength(PUSH_LIMIT);
    expect(state.pushes[0].title).toBe(`お知らせ ${PUSH_LIMIT + 2}`);
    expect(run([[push(0), 0]]).pushes[0].clickAction).toBe("https://site.example/news");
  });

  it("a clicked push leads home from an idle screen but never out of a call", () => {
    const ended = run([[{ event: "link.invalid", link: "nexmile://x", code: "missing_parameter", message: "bad", parameter: "site" }, 0], [push(1), 1]]);
    expect(ended.screen.kind).toBe("linkError");
    expect(reduce(ended, { event: "notification.opened", kind: "push" }, 2).screen.kind).toBe("home");
    const talking = run([
      [linkOpened("makecall", "s"), 0],
      [{ event: "call.prepared", ...details }, 1],
      [{ event: "call.connected", callToken: "c1" }, 2],
    ]);
    expect(reduce(talking, { event: "notification.opened", kind: "push" }, 3).screen.kind).toBe("inCall");
  });

  it("names the camera and microphone of the running test", () => {
    const camera = { name: "Nexmile test pattern", synthetic: true, reason: "no camera is connected", problem: "missing" };
    const microphone = { name: "default", synthetic: false, reason: null, problem: null };
    const speaker = { name: "default", reason: null, problem: null };
    const state = reduce(initialState, { event: "devices", camera, microphone, speaker }, 0);
    expect(state.devices).toEqual({ camera, microphone, speaker });
  });
});
