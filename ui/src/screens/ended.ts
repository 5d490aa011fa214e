// Screens that close something: a call's end, a message, a link to confirm, work under way.

import { type MessageKey, duration, reasonText } from "../i18n";
import { ui, tr, escape, header, closingButtons } from "../view";

export function endedScreen(): string {
  if (ui.state.screen.kind !== "ended") return "";
  const s = ui.state.screen;
  return `${header()}<main class="center">
    <h1>${tr("ended.title")}</h1>
    ${s.peerName ? `<div class="peer-name dark-text">${escape(s.peerName)}</div>` : ""}
    <p data-testid="reason">${escape(s.message ?? (endedByMe(s.reason, s.outgoing) ? tr("reason.self") : reasonText(ui.language, s.reason)))}</p>
    ${s.talkSec > 0 ? `<p class="muted">${tr("ended.talk", { time: duration(ui.language, s.talkSec) })}</p>` : ""}
    ${closingButtons()}
  </main>`;
}

/// The reason is this side's own hang-up.
function endedByMe(reason: number, outgoing: boolean): boolean {
  return (reason === 1 && outgoing) || (reason === 2 && !outgoing);
}

export function messageScreen(title: string, body: string, detail?: string): string {
  return `${header()}<main class="center"><div class="card message">
    <h1>${escape(title)}</h1><p>${escape(body)}</p>${detail ? `<p class="muted small">${escape(detail)}</p>` : ""}
    ${closingButtons()}</div></main>`;
}

/// A link from outside, named by its site and what it would do, before it runs.
export function confirmScreen(): string {
  if (ui.state.screen.kind !== "confirmLink") return "";
  const s = ui.state.screen;
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

export function workingScreen(): string {
  if (ui.state.screen.kind !== "working") return "";
  const s = ui.state.screen;
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
