// A live on the screen — broadcasting or watching — as a pure function of
// the engine's `live.*` events, so it is tested without a window.

export type LiveRole = "broadcaster" | "viewer";

export interface GiftItem {
  kind: "stamp" | "gift";
  category: string;
  item_no: string;
  name: string;
  point: number;
  liver_point: number;
  file?: string | null;
}

export interface LiveComment {
  userId: string;
  name: string;
  text: string;
  fromBroadcaster: boolean;
  /// Points the comment cost (a paid comment), else 0.
  point: number;
  /// A gift or stamp shown among the comments.
  item?: GiftItem;
}

export interface RankedViewer {
  user_id: string;
  name: string;
  points: number;
}

/// A §5.4.4 pop-up, already range-checked by the engine.
export interface TimedMessage {
  after_sec: number;
  duration_sec: number;
  text: string;
  x_percent: number;
  y_percent: number;
  width_percent: number;
}

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

type Event = { event: string } & Record<string, unknown>;

/// The live screen after `e`, or `undefined` when `e` is not about it.
export function reduceLive(live: LiveView | undefined, e: Event, now: number): LiveView | undefined {
  if (e.event === "live.prepared") {
    const settings = (e.settings ?? {}) as Record<string, unknown>;
    return {
      role: e.role as LiveRole,
      token: String(e.live_token ?? ""),
      title: String(e.title ?? ""),
      liverName: String(e.liver_name ?? ""),
      audioOnly: Boolean(e.audio_only),
      paid: Boolean(e.paid),
      phase: "ready",
      viewers: 0,
      ranking: [],
      comments: [],
      gifts: live?.gifts ?? [],
      nextCommentMs: Number(e.next_comment_ms ?? 0),
      nextGiftMs: Number(e.next_gift_ms ?? 0),
      commentGuide: (settings.commentGuide as string | undefined) ?? undefined,
      favorite: Boolean(settings.favorite),
      recordingAllowed: (Number(settings.serviceOptions ?? 0) & 2) !== 0,
      apngOnVideo: Boolean(settings.apngOnVideoProcessor),
      messages: (e.messages as TimedMessage[] | undefined) ?? [],
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
      return { ...live, gifts: (e.items as GiftItem[]) ?? [] };
    case "live.comment": {
      const comment: LiveComment = {
        userId: String(e.user_id ?? ""),
        name: String(e.name ?? ""),
        text: String(e.text ?? ""),
        fromBroadcaster: Boolean(e.from_broadcaster),
        point: Number(e.point ?? 0),
      };
      return { ...live, comments: [...live.comments, comment].slice(-COMMENT_LIMIT) };
    }
    case "live.item": {
      const item = e.item as GiftItem;
      const entry: LiveComment = {
        userId: String(e.user_id ?? ""),
        name: String(e.name ?? ""),
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
      return { ...live, viewers: Number(e.count ?? 0), ranking: (e.ranking as RankedViewer[]) ?? [] };
    case "live.billing":
      return { ...live, timeLeftSec: (e.time_left_sec as number | undefined) ?? null, usedPoints: Number(e.used_points ?? 0) };
    case "live.paid":
      return { ...live, paid: true };
    case "live.refused":
      return { ...live, notice: { kind: "refused", text: String(e.message ?? "") } };
    case "live.admin_message":
      return { ...live, notice: { kind: "admin", text: String(e.text ?? "") } };
    case "live.payment":
      return { ...live, notice: { kind: "payment", points: Number(e.points ?? 0) } };
    case "live.viewer_updated":
      return {
        ...live,
        ranking: live.ranking.map((v) => (v.user_id === e.user_id ? { ...v, name: String(e.name ?? v.name) } : v)),
      };
    default:
      return live;
  }
}

/// The end of the live for this side, from its `live.ended` event.
/// A viewer's figures come from the server (33's); the broadcaster's time
/// on air is counted here, from going on air to `now`.
export function liveEnded(live: LiveView | undefined, e: Event, now: number): LiveEnded {
  const summary = e.summary as { live_sec?: number; point?: number } | null | undefined;
  const role = live?.role ?? "viewer";
  const onAir = role === "broadcaster" && live?.onAirSince !== undefined ? Math.floor((now - live.onAirSince) / 1000) : undefined;
  return {
    role,
    reason: String(e.reason ?? ""),
    message: (e.message as string | null | undefined) ?? null,
    liveSec: summary?.live_sec ?? onAir,
    point: summary?.point,
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
