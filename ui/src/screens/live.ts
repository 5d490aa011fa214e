// A live's screens: the stage, the side panels, the comment lines, and its end.

import { convertFileSrc } from "@tauri-apps/api/core";
import { type MessageKey, duration, messages } from "../i18n";
import { frameCss, type LiveEnded, type LiveView, lineKind, linePieces, placeholderValues } from "../live";
import { ui, tr, escape, header, icon, closingButtons } from "../view";

export function liveScreen(live: LiveView): string {
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
    buttons = `<button class="round ${ui.switches.microphone ? "" : "off"}" data-action="mic" title="${ui.switches.microphone ? tr("incall.mute") : tr("incall.unmute")}">${icon(ui.switches.microphone ? "mic" : "micOff")}</button>
      <button class="round ${ui.switches.camera ? "" : "off"}" data-action="camera" title="${ui.switches.camera ? tr("incall.cameraOff") : tr("incall.cameraOn")}">${icon(ui.switches.camera ? "camera" : "cameraOff")}</button>
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
      ${live.reconnecting ? `<div class="live-hint" role="status" aria-live="polite">${tr("incall.reconnecting")}</div>` : ""}
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

export function commentsHtml(live: LiveView): string {
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

export function rankingHtml(live: LiveView): string {
  if (live.ranking.length === 0) return `<li class="muted small">${tr("live.noViewers")}</li>`;
  return live.ranking
    .map(
      (v, i) => `<li><span class="rank">${i + 1}</span><span class="peer">${escape(v.name)}</span>
        <span class="pt">${tr("live.points", { points: v.points })}</span>
        <button class="link danger" data-action="live-remove" data-user="${escape(v.user_id)}">${tr("live.remove")}</button></li>`,
    )
    .join("");
}

export function giftPlayHtml(live: LiveView, now: number): string {
  const playing = live.playing && live.playing.until > now ? live.playing : undefined;
  if (!playing) return "";
  // In the video already when the broadcaster composites it (§5.4.1).
  const picture = playing.item.file && ui.catalogue && !live.apngOnVideo ? `<img src="${convertFileSrc(`${ui.catalogue.dir}/${playing.item.file}`)}" alt="" onerror="this.remove()">` : "";
  return `<div class="gift-pop">${picture}<span>${escape(tr("live.giftFrom", { name: playing.from, item: playing.item.name }))}</span></div>`;
}

export function liveEndedScreen(ended: LiveEnded): string {
  const key = `liveReason.${ended.reason}` as MessageKey;
  // Ending it oneself needs no reason under the title that says so.
  const ownDoing =
    (ended.role === "broadcaster" && ended.reason === "broadcaster_ended") || (ended.role === "viewer" && ended.reason === "viewer_left");
  const reason = ended.message ?? (ownDoing ? "" : key in messages[ui.language] ? tr(key) : tr("error.title"));
  let watched = "";
  if (ended.liveSec !== undefined && ended.role === "broadcaster") {
    watched = `<p class="muted">${tr("liveEnded.onAir", { time: duration(ui.language, ended.liveSec) })}</p>`;
  } else if (ended.liveSec !== undefined) {
    watched = `<p class="muted">${tr("liveEnded.watched", { time: duration(ui.language, ended.liveSec), points: ended.point ?? 0 })}</p>`;
  }
  return `${header()}<main class="center">
    <h1>${tr(ended.role === "broadcaster" ? "liveEnded.broadcaster" : "liveEnded.viewer")}</h1>
    ${reason ? `<p data-testid="reason">${escape(reason)}</p>` : ""}${watched}
    ${closingButtons()}
  </main>`;
}
