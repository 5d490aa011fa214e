import { describe, expect, it } from "vitest";
import {
  type Appearance,
  COMMENT_LIMIT,
  DEFAULT_APPEARANCE,
  GIFT_PLAY_MS,
  type GiftItem,
  type LiveComment,
  frameCss,
  lineKind,
  linePieces,
  parseWording,
  placeholderValues,
  visibleMessages,
  waitLeft,
} from "../src/live";
import type { LiveRole } from "../src/generated/types";
import { type AppState, type EngineEvent, initialState, reduce } from "../src/state";

type Ev = EngineEvent;

function run(events: Array<[Ev, number]>, from: AppState = initialState): AppState {
  return events.reduce((state, [event, now]) => reduce(state, event, now), from);
}

const prepared = (role: LiveRole) => ({
  event: "live.prepared" as const,
  kind: "prepared" as const,
  live_token: "lt",
  link_id: "room-airi",
  role,
  liver_user_id: "airi",
  liver_name: "星野あいり",
  title: "星野あいりのライブ",
  audio_only: false,
  paid: role === "viewer",
  next_comment_ms: 500,
  next_gift_ms: 1000,
  settings: { commentGuide: "コメントを書いて応援しよう", viewerPokeCategoryNo: "9", viewerPokeGiftNo: 1, serviceOptions: 1, quickPayments: [{ pointText: "300 pt", paymentAmount: 300 }],
    specialUrls: [{ imageUrl: "https://site.example/banner.png", linkUrl: "https://site.example/" }, { imageUrl: "javascript:alert(1)" }] },
  appearance: DEFAULT_APPEARANCE,
  messages: [],
});

const heart: GiftItem = { kind: "gift", category: "2", item_no: "1", name: "ハート", point: 50, liver_point: 25, file: "gifts/heart.png" };

describe("a live on the screen", () => {
  it("takes the broadcaster from preparing to the preview to on air to the end", () => {
    let state = run([[{ event: "link.opened", function: "broadcastLive", site: "newsite1", download: false, returnUrl: null }, 0]]);
    expect(state.screen).toEqual({ kind: "working", task: "live" });
    state = reduce(state, prepared("broadcaster"), 10);
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(state.screen.live.phase).toBe("ready");
    expect(state.screen.live.commentGuide).toBe("コメントを書いて応援しよう");
    expect(state.screen.live.recordingAllowed).toBe(false);
    expect(state.screen.live.apngOnVideo).toBe(false);
    expect(state.screen.live.greeting).toEqual({ category: "9", itemNo: "1" });
    // Only http(s) pictures are shown.
    expect(state.screen.live.specialUrls).toEqual([{ imageUrl: "https://site.example/banner.png", linkUrl: "https://site.example/" }]);
    state = run(
      [
        [{ event: "live.on_air", liveToken: "lt" }, 1000],
        [{ event: "live.viewers", kind: "viewers", count: 2, ranking: [{ user_id: "hanako", name: "山田花子", points: 50 }] }, 2000],
        [{ event: "live.comment", kind: "comment", user_id: "hanako", name: "山田花子", text: "こんばんは", from_broadcaster: false, point: 0 }, 2100],
        [{ event: "live.item", kind: "item", user_id: "hanako", name: "山田花子", item: heart }, 2200],
        [{ event: "live.admin_message", kind: "admin_message", text: "音量を下げてください" }, 2300],
      ],
      state,
    );
    if (state.screen.kind !== "live") throw new Error("no live screen");
    const live = state.screen.live;
    expect(live.phase).toBe("onAir");
    expect(live.onAirSince).toBe(1000);
    expect(live.viewers).toBe(2);
    expect(live.comments.map((c) => c.text)).toEqual(["こんばんは", "ハート"]);
    expect(live.playing?.until).toBe(2200 + GIFT_PLAY_MS);
    expect(live.notice).toEqual({ kind: "admin", text: "音量を下げてください" });
    state = reduce(state, { event: "live.ended", kind: "ended", reason: "broadcaster_ended" }, 3000);
    // On air from 1 s to 3 s: the broadcaster's end screen says 2 s.
    expect(state.screen).toEqual({ kind: "liveEnded", ended: { role: "broadcaster", reason: "broadcaster_ended", message: null, liveSec: 2, point: undefined } });
  });

  it("gives a viewer the palette, the billing and its summary at the end", () => {
    const state = run([
      [{ event: "link.opened", function: "viewLive", site: "newsite1", download: false, returnUrl: null }, 0],
      [prepared("viewer"), 10],
      [{ event: "live.gifts", items: [heart] }, 20],
      [{ event: "live.on_air", liveToken: "lt" }, 1000],
      [{ event: "live.billing", kind: "billing", time_left_sec: 569, used_points: 0 }, 2000],
      [{ event: "live.refused", kind: "refused", message: "ポイントが不足しています" }, 2500],
    ]);
    const paid = reduce(state, { event: "live.payment", kind: "payment_done", points: 300 }, 2600);
    if (paid.screen.kind !== "live") throw new Error("no live screen");
    expect(paid.screen.live.notice).toEqual({ kind: "payment", points: 300 });
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(state.screen.live.gifts).toHaveLength(1);
    expect(state.screen.live.timeLeftSec).toBe(569);
    expect(state.screen.live.notice).toEqual({ kind: "refused", text: "ポイントが不足しています" });
    expect(state.screen.live.quickPayments).toEqual([{ pointText: "300 pt", paymentAmount: 300 }]);
    const ended = reduce(state, { event: "live.ended", kind: "ended", reason: "points_exhausted", summary: { live_sec: 91, point: 61, charge_sec: 91 } }, 3000);
    expect(ended.screen).toEqual({ kind: "liveEnded", ended: { role: "viewer", reason: "points_exhausted", message: null, liveSec: 91, point: 61 } });
  });

  it("keeps the newest comments only and ignores live events with no live on screen", () => {
    let state = run([[prepared("viewer"), 0]]);
    for (let i = 0; i < COMMENT_LIMIT + 5; i++) {
      state = reduce(state, { event: "live.comment", kind: "comment", user_id: "u", name: "u", text: `${i}`, from_broadcaster: false, point: 0 }, i);
    }
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(state.screen.live.comments).toHaveLength(COMMENT_LIMIT);
    expect(state.screen.live.comments[0].text).toBe("5");
    expect(reduce(initialState, { event: "live.admin_message", kind: "admin_message", text: "x" }, 0).screen.kind).toBe("home");
  });

  it("shows a pop-up from its seconds after going on air for its duration", () => {
    const message = { after_sec: 10, duration_sec: 5, text: "法令を守りましょう", x_percent: 0, y_percent: -50, width_percent: 70 };
    let state = run([[{ ...prepared("viewer"), messages: [message] }, 0]]);
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(visibleMessages(state.screen.live, 20_000)).toEqual([]);
    state = reduce(state, { event: "live.on_air", liveToken: "lt" }, 1000);
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(visibleMessages(state.screen.live, 10_999)).toEqual([]);
    expect(visibleMessages(state.screen.live, 11_000)).toEqual([message]);
    expect(visibleMessages(state.screen.live, 16_000)).toEqual([]);
  });

  it("holds a button for the partner's interval", () => {
    expect(waitLeft(undefined, 500, 1000)).toBe(0);
    expect(waitLeft(1000, 500, 1200)).toBe(300);
    expect(waitLeft(1000, 500, 1600)).toBe(0);
    expect(waitLeft(1000, 0, 1000)).toBe(0);
  });
});

describe("lines of the comment area (§5.4.2 frames, §5.4.3 wordings)", () => {
  const comment = (over: Partial<LiveComment>): LiveComment => ({
    kind: "comment", userId: "hanako", name: "山田花子", text: "こんばんは", fromBroadcaster: false, point: 0, ...over,
  });
  const stamp = { ...heart, kind: "stamp" as const, point: 0 };

  it("picks the frame and wording of each kind of line for each side", () => {
    expect(lineKind("viewer", comment({}))).toEqual({ frame: 53, wording: 22 });
    expect(lineKind("viewer", comment({ point: 10 }))).toEqual({ frame: 52, wording: 22 });
    expect(lineKind("viewer", comment({ fromBroadcaster: true }))).toEqual({ frame: 1, wording: 7 });
    expect(lineKind("broadcaster", comment({ kind: "item", item: heart }))).toEqual({ frame: 21, wording: 3 });
    expect(lineKind("broadcaster", comment({ kind: "item", item: stamp }))).toEqual({ frame: 24, wording: 6 });
    expect(lineKind("viewer", comment({ kind: "item", item: heart }))).toEqual({ frame: 71, wording: 33 });
    expect(lineKind("viewer", comment({ kind: "item", item: stamp }))).toEqual({ frame: 74, wording: 36 });
    expect(lineKind("viewer", comment({ kind: "joined" }))).toEqual({ frame: 51, wording: 21 });
    expect(lineKind("viewer", comment({ kind: "paid" }))).toEqual({ frame: 25, wording: 13 });
  });

  it("fills the default wording, or the partner's, with styled placeholders", () => {
    const values = placeholderValues(comment({ kind: "item", item: heart }), "星野あいり", (n) => `${n}pt`);
    const plain = linePieces(DEFAULT_APPEARANCE, 33, "%Tran.UserName%:ギフトを%Tran.GiftPointText%送りました", values);
    expect(plain.map((p) => p.text).join("")).toBe("山田花子:ギフトを50pt送りました");
    const appearance: Appearance = {
      ...DEFAULT_APPEARANCE,
      wordings: [{ wording: 33, segments: [
        { kind: "placeholder", name: "Tran.UserName", color: "rgba(255, 0, 0, 1.000)", font_size: 18 },
        { kind: "text", text: "さんから" },
        { kind: "placeholder", name: "Tran.GiftName" },
      ] }],
    };
    const custom = linePieces(appearance, 33, "unused", values);
    expect(custom.map((p) => p.text).join("")).toBe("山田花子さんからハート");
    expect(custom[0]).toMatchObject({ placeholder: "Tran.UserName", color: "rgba(255, 0, 0, 1.000)", fontSize: 18 });
    expect(parseWording("%Tran.UserName%イン")).toEqual([{ kind: "placeholder", name: "Tran.UserName" }, { kind: "text", text: "イン" }]);
  });

  it("draws only what the partner's frame sets", () => {
    const appearance: Appearance = {
      ...DEFAULT_APPEARANCE,
      frames: [{ design: 53, fore: "rgba(255, 255, 255, 1.000)", back: "rgba(0, 0, 0, 0.498)", border_width: 2, border_radius: 8, font_size: 18 }],
    };
    expect(frameCss(appearance, 53)).toBe("color:rgba(255, 255, 255, 1.000);background:rgba(0, 0, 0, 0.498);border:2px solid currentColor;border-radius:8px;font-size:18px");
    expect(frameCss(appearance, 52)).toBe("");
  });

  it("keeps arrivals and the paid switch among the comments, and knows a recorded live", () => {
    let state = run([[{ event: "link.opened", function: "viewLive", site: "newsite1", download: false, returnUrl: null }, 0]]);
    state = reduce(state, { ...prepared("viewer"), settings: { serverSideRecording: true } }, 10);
    state = reduce(state, { event: "live.joined", kind: "joined", user_id: "taro", name: "佐藤太郎", image: "https://site.example/taro.png" }, 20);
    state = reduce(state, { event: "live.paid", kind: "paid_switched", unit_sec: 60, unit_price: 100, point_price: 1, free_trial_sec: 30 }, 30);
    if (state.screen.kind !== "live") throw new Error("no live screen");
    expect(state.screen.live.recorded).toBe(true);
    expect(state.screen.live.appearance).toEqual(DEFAULT_APPEARANCE);
    expect(state.screen.live.comments.map((c) => c.kind)).toEqual(["joined", "paid"]);
    expect(state.screen.live.comments[0].image).toBe("https://site.example/taro.png");
    expect(state.screen.live.comments[1].unitPrice).toBe(100);
  });
});
