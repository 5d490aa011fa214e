// A live on the screen — broadcasting or watching — as a pure function of
// the engine's `live.*` events, so it is tested without a window.

import type {
  EngineEvent,
  FrameStyle,
  GiftItem,
  LiveAppearance,
  LiveNotice,
  LiveRole,
  RankedViewer,
  TimedMessage,
  WordingPiece,
} from "./generated/types";

export type { FrameStyle, GiftItem, LiveRole, RankedViewer, TimedMessage, WordingPiece };
/// §5.4.2/§5.4.3 as the engine range-checked them.
export type Appearance = LiveAppearance;

export interface LiveComment {
  /// A comment, a gift or stamp, a viewer's arrival (login guidance), or the live becoming paid.
  kind: "comment" | "item" | "joined" | "paid";
  userId: string;
  name: string;
  text: string;
  fromBroadcaster: boolean;
  /// Points the comment cost (a paid comment), else 0.
  point: number;
  /// A gift or stamp shown among the comments.
  item?: GiftItem;
  /// The writer's profileImageUrl (shown where serviceOptions 1 allows).
  image?: string;
  /// The paid switch's price.
  unitPrice?: number;
  unitSec?: number;
}

export const DEFAULT_APPEARANCE: Appearance = {
  frames: [],
  wordings: [],
  comment_image_px: 24,
  comment_width_percent: 90,
  comment_height_percent: 30,
  profile_images: false,
};

export interface LiveView {
  role: LiveRole;
  token: string;
  title: string;
  liverName: string;
  audioOnly: boolean;
  paid: boolean;
  /// "ready": prepared, not started (the broadcaster's preview); "onAir".
  phase: "ready" | "onAir";
  /// The page's clock (ms) when it went on air.
  onAirSince?: number;
  viewers: number;
  ranking: RankedViewer[];
  comments: LiveComment[];
  gifts: GiftItem[];
  /// The newest gift, played over the picture until `until` (ms).
  playing?: { item: GiftItem; from: string; until: number };
  timeLeftSec?: number | null;
  usedPoints?: number;
  /// The media path went silent and has not come back yet.
  reconnecting?: boolean;
  /// A refusal, an administrator's message or a completed payment, shown until replaced.
  notice?: { kind: "refused" | "admin"; text: string } | { kind: "payment"; points: number };
  /// The amounts the viewer may buy points for (§5.4.6 quickPayments).
  quickPayments: { pointText: string; paymentAmount: number }[];
  nextCommentMs: number;
  nextGiftMs: number;
  commentGuide?: string;
  favorite: boolean;
  /// serviceOptions 2: viewers may record; otherwise the window is protected or watermarked.
  recordingAllowed: boolean;
  /// The viewer's greeting stamp (§5.3.9 viewerPoke*), if the site has one.
  greeting?: { category: string; itemNo: string };
  /// The partner's pictures for the live screens (specialUrls), with where a click leads.
  specialUrls: { imageUrl: string; linkUrl?: string | null }[];
  /// Pop-ups timed from going on air / starting to watch.
  messages: TimedMessage[];
  /// §5.4.1: gifts are drawn into the broadcaster's video, so the screen
  /// names them without drawing them again.
  apngOnVideo: boolean;
  /// serverSideRecording: the live is recorded on the server (everyone is told).
  recorded: boolean;
  appearance: Appearance;
}

export interface LiveEnded {
  role: LiveRole;
  reason: string;
  message?: string | null;
  liveSec?: number;
  point?: number;
}

/// How many comments the screen keeps.
export const COMMENT_LIMIT = 100;
/// How long a gift plays over the picture (ms).
export const GIFT_PLAY_MS = 4000;

/// The engine's event for one of the live's notices, as the engine names
/// them (`EngineEvent::live` on the Rust side); the web version reads the
/// server's notices through it.
export function liveEvent(liveToken: string, notice: LiveNotice): EngineEvent {
  switch (notice.kind) {
    case "prepared":
      return { ...notice, event: "live.prepared" };
    case "on_air":
      return { event: "live.on_air", liveToken };
    case "ended":
      return { ...notice, event: "live.ended" };
    case "comment":
      return { ...notice, event: "live.comment" };
    case "joined":
      return { ...notice, event: "live.joined" };
    case "item":
      return { ...notice, event: "live.item" };
    case "viewers":
      return { ...notice, event: "live.viewers" };
    case "billing":
      return { ...notice, event: "live.billing" };
    case "refused":
      return { ...notice, event: "live.refused" };
    case "paid_switched":
      return { ...notice, event: "live.paid" };
    case "admin_message":
      return { ...notice, event: "live.admin_message" };
    case "viewer_updated":
      return { ...notice, event: "live.viewer_updated" };
    case "payment_done":
      return { ...notice, event: "live.payment" };
  }
}

/// The live screen after `e`, or `undefined` when `e` is not about it.
export function reduceLive(live: LiveView | undefined, e: EngineEvent, now: number): LiveView | undefined {
  if (e.event === "live.prepared" && e.kind === "prepared") {
    const settings = e.settings;
    return {
      role: e.role,
      token: e.live_token,
      title: e.title ?? "",
      liverName: e.liver_name,
      audioOnly: e.audio_only,
      paid: e.paid,
      phase: "ready",
      viewers: 0,
      ranking: [],
      comments: [],
      gifts: live?.gifts ?? [],
      nextCommentMs: e.next_comment_ms,
      nextGiftMs: e.next_gift_ms,
      commentGuide: (settings.commentGuide as string | undefined) ?? undefined,
      favorite: Boolean(settings.favorite),
      recordingAllowed: (Number(settings.serviceOptions ?? 0) & 2) !== 0,
      apngOnVideo: Boolean(settings.apngOnVideoProcessor),
      recorded: Boolean(settings.serverSideRecording),
      appearance: e.appearance,
      messages: e.messages,
      specialUrls: ((settings.specialUrls as LiveView["specialUrls"] | undefined) ?? []).filter((u) =>
        /^https?:\/\//.test(u.imageUrl),
      ),
      greeting:
        settings.viewerPokeCategoryNo && settings.viewerPokeGiftNo
          ? { category: String(settings.viewerPokeCategoryNo), itemNo: String(settings.viewerPokeGiftNo) }
          : undefined,
      quickPayments: (settings.quickPayments as LiveView["quickPayments"] | undefined) ?? [],
    };
  }
  if (!live) return undefined;
  switch (e.event) {
    case "live.on_air":
      return { ...live, phase: "onAir", onAirSince: live.onAirSince ?? now };
    case "live.gifts":
      return { ...live, gifts: e.items };
    case "live.comment": {
      if (e.kind !== "comment") return live;
      const comment: LiveComment = {
        kind: "comment",
        image: e.image ?? undefined,
        userId: e.user_id,
        name: e.name,
        text: e.text,
        fromBroadcaster: e.from_broadcaster,
        point: e.point,
      };
      return { ...live, comments: [...live.comments, comment].slice(-COMMENT_LIMIT) };
    }
    case "live.item": {
      if (e.kind !== "item") return live;
      const item = e.item;
      const entry: LiveComment = {
        kind: "item",
        image: e.image ?? undefined,
        userId: e.user_id,
        name: e.name,
        text: item.name,
        fromBroadcaster: false,
        point: item.point,
        item,
      };
      return {
        ...live,
        comments: [...live.comments, entry].slice(-COMMENT_LIMIT),
        playing: { item, from: entry.name, until: now + GIFT_PLAY_MS },
      };
    }
    case "live.viewers":
      return e.kind === "viewers" ? { ...live, viewers: e.count, ranking: e.ranking } : live;
    case "live.billing":
      return e.kind === "billing" ? { ...live, timeLeftSec: e.time_left_sec ?? null, usedPoints: e.used_points } : live;
    case "live.joined": {
      if (e.kind !== "joined") return live;
      const line: LiveComment = {
        kind: "joined",
        userId: e.user_id,
        name: e.name,
        text: "",
        fromBroadcaster: false,
        point: 0,
        image: e.image ?? undefined,
      };
      return { ...live, comments: [...live.comments, line].slice(-COMMENT_LIMIT) };
    }
    case "live.paid": {
      if (e.kind !== "paid_switched") return live;
      const line: LiveComment = {
        kind: "paid",
        userId: "",
        name: live.liverName,
        text: "",
        fromBroadcaster: true,
        point: 0,
        unitPrice: e.unit_price,
        unitSec: e.unit_sec,
      };
      return { ...live, paid: true, comments: [...live.comments, line].slice(-COMMENT_LIMIT) };
    }
    case "live.refused":
      return e.kind === "refused" ? { ...live, notice: { kind: "refused", text: e.message } } : live;
    case "live.admin_message":
      return e.kind === "admin_message" ? { ...live, notice: { kind: "admin", text: e.text } } : live;
    case "live.payment":
      return e.kind === "payment_done" ? { ...live, notice: { kind: "payment", points: e.points } } : live;
    case "live.viewer_updated": {
      if (e.kind !== "viewer_updated") return live;
      const { user_id, name } = e;
      return { ...live, ranking: live.ranking.map((v) => (v.user_id === user_id ? { ...v, name } : v)) };
    }
    default:
      return live;
  }
}

/// The end of the live for this side, from its `live.ended` event.
/// A viewer's figures come from the server (33's); the broadcaster's time
/// on air is counted here, from going on air to `now`.
export function liveEnded(live: LiveView | undefined, e: Extract<LiveNotice, { kind: "ended" }>, now: number): LiveEnded {
  const role = live?.role ?? "viewer";
  const onAir = role === "broadcaster" && live?.onAirSince !== undefined ? Math.floor((now - live.onAirSince) / 1000) : undefined;
  return {
    role,
    reason: e.reason,
    message: e.message ?? null,
    liveSec: e.summary?.live_sec ?? onAir,
    point: e.summary?.point,
  };
}

/// The pop-ups showing at `now` (the page's clock): each from its seconds
/// after the start, for its duration.
export function visibleMessages(live: LiveView, now: number): TimedMessage[] {
  const since = live.onAirSince;
  if (since === undefined) return [];
  const elapsed = (now - since) / 1000;
  return live.messages.filter((m) => elapsed >= m.after_sec && elapsed < m.after_sec + m.duration_sec);
}

/// Milliseconds until a button used at `last` may be used again (0: now).
export function waitLeft(last: number | undefined, intervalMs: number, now: number): number {
  if (last === undefined || intervalMs <= 0) return 0;
  return Math.max(0, last + intervalMs - now);
}

/// Which §5.4.2 frame (frameDesignTp) and §5.4.3 wording (wordingTp) a line
/// of the comment area uses on this side's screen: what the broadcaster
/// receives (21–24, 3–6) and what viewers see sent (71–74, 33–36) differ.
export function lineKind(role: LiveRole, c: LiveComment): { frame: number; wording: number } {
  switch (c.kind) {
    case "joined":
      return { frame: 51, wording: 21 };
    case "paid":
      return { frame: 25, wording: 13 };
    case "item": {
      const gift = c.item?.kind === "gift";
      const paid = (c.item?.point ?? 0) > 0;
      const offset = (gift ? 0 : 2) + (paid ? 0 : 1);
      return role === "broadcaster" ? { frame: 21 + offset, wording: 3 + offset } : { frame: 71 + offset, wording: 33 + offset };
    }
    default:
      if (c.fromBroadcaster) return { frame: 1, wording: 7 };
      return { frame: c.point > 0 ? 52 : 53, wording: 22 };
  }
}

/// A wording's text split at its `%Tran.…%` placeholders.
export function parseWording(text: string): WordingPiece[] {
  const pieces: WordingPiece[] = [];
  let rest = text;
  for (;;) {
    const match = /%(Tran\.[A-Za-z]+)%/.exec(rest);
    if (!match) break;
    if (match.index > 0) pieces.push({ kind: "text", text: rest.slice(0, match.index) });
    pieces.push({ kind: "placeholder", name: match[1] });
    rest = rest.slice(match.index + match[0].length);
  }
  if (rest) pieces.push({ kind: "text", text: rest });
  return pieces;
}

/// The values a line's placeholders take.
export function placeholderValues(c: LiveComment, liverName: string, pointsText: (n: number) => string): Record<string, string> {
  return {
    "Tran.UserName": c.name,
    "Tran.Comment": c.text,
    "Tran.GiftName": c.item?.name ?? "",
    "Tran.GiftPointText": c.item ? pointsText(c.item.point) : "",
    "Tran.LiverName": liverName,
    "Tran.UnitPrice": String(c.unitPrice ?? ""),
    "Tran.UnitSec": String(c.unitSec ?? ""),
  };
}

/// The line's pieces: the partner's specialWording for its wordingTp, or the
/// default text (in the screen's language), with placeholders filled in.
/// A placeholder the default text does not name keeps no value (removed).
export function linePieces(
  appearance: Appearance,
  wording: number,
  defaultText: string,
  values: Record<string, string>,
): { text: string; placeholder?: string; color?: string; fontSize?: number }[] {
  const custom = appearance.wordings.find((w) => w.wording === wording);
  const pieces = custom ? custom.segments : parseWording(defaultText);
  return pieces.map((p) =>
    p.kind === "text"
      ? { text: p.text }
      : { text: values[p.name] ?? "", placeholder: p.name, color: p.color ?? undefined, fontSize: p.font_size ?? undefined },
  );
}

/// Inline CSS for a line's frame: only what the partner set, so the default
/// look stays where it did not.
export function frameCss(appearance: Appearance, frame: number): string {
  const f = appearance.frames.find((x) => x.design === frame);
  if (!f) return "";
  const rules: string[] = [];
  if (f.fore) rules.push(`color:${f.fore}`);
  if (f.back) rules.push(`background:${f.back}`);
  if (f.border_width !== undefined) rules.push(`border:${f.border_width}px solid ${f.border ?? "currentColor"}`);
  else if (f.border) rules.push(`border:1px solid ${f.border}`);
  if (f.border_radius !== undefined) rules.push(`border-radius:${f.border_radius}px`);
  if (f.font_size !== undefined) rules.push(`font-size:${f.font_size}px`);
  if (f.padding_vertical !== undefined || f.padding_horizontal !== undefined) {
    rules.push(`padding:${f.padding_vertical ?? 4}px ${f.padding_horizontal ?? 10}px`);
  }
  return rules.join(";");
}
