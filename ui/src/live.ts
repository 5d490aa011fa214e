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

/// §5.4.2 frame, range-checked by the engine; colours are CSS.
export interface FrameStyle {
  design: number;
  fore?: string;
  back?: string;
  border?: string;
  border_width?: number;
  border_radius?: number;
  font_size?: number;
  padding_vertical?: number;
  padding_horizontal?: number;
}

export type WordingPiece =
  | { kind: "text"; text: string }
  | { kind: "placeholder"; name: string; color?: string; font_size?: number };

export interface Appearance {
  frames: FrameStyle[];
  wordings: { wording: number; segments: WordingPiece[] }[];
  comment_image_px: number;
  comment_width_percent: number;
  comment_height_percent: number;
  profile_images: boolean;
}

export const DEFAULT_APPEARANCE: Appearance = {
  frames: [],
  wordings: [],
  comment_image_px: 24,
  comment_width_percent: 90,
  comment_height_percent: 30,
  profile_images: false,
};

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
      recorded: Boolean(settings.serverSideRecording),
      appearance: (e.appearance as Appearance | undefined) ?? DEFAULT_APPEARANCE,
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
        kind: "comment",
        image: (e.image as string | undefined) ?? undefined,
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
        kind: "item",
        image: (e.image as string | undefined) ?? undefined,
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
    case "live.joined": {
      const line: LiveComment = {
        kind: "joined",
        userId: String(e.user_id ?? ""),
        name: String(e.name ?? ""),
        text: "",
        fromBroadcaster: false,
        point: 0,
        image: (e.image as string | undefined) ?? undefined,
      };
      return { ...live, comments: [...live.comments, line].slice(-COMMENT_LIMIT) };
    }
    case "live.paid": {
      const line: LiveComment = {
        kind: "paid",
        userId: "",
        name: live.liverName,
        text: "",
        fromBroadcaster: true,
        point: 0,
        unitPrice: Number(e.unit_price ?? 0),
        unitSec: Number(e.unit_sec ?? 0),
      };
      return { ...live, paid: true, comments: [...live.comments, line].slice(-COMMENT_LIMIT) };
    }
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
      : { text: values[p.name] ?? "", placeholder: p.name, color: p.color, fontSize: p.font_size },
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
