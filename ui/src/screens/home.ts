// The home screen: profiles, phone number, messages and recent calls.

import { duration, reasonText } from "../i18n";
import { devicePanel, effectsPanel } from "./panels";
import { ui, tr, escape, activeProfile, header } from "../view";

export function homeScreen(): string {
  const profile = activeProfile();
  const notice = ui.state.screen.kind === "home" ? ui.state.screen.notice : undefined;
  let noticeText = "";
  if (notice?.startsWith("activated:")) {
    const [, site, name] = notice.split(":");
    noticeText = tr("activated", { site, name });
  } else if (notice === "busy") {
    noticeText = tr("link.busy");
  }
  const profiles = (ui.overview?.profiles ?? [])
    .map(
      (p) => `<li class="profile ${p.site === ui.overview?.active ? "active" : ""}" data-action="switch" data-site="${escape(p.site)}">
        <div class="site">${escape(p.site)}</div>
        <div class="name">${escape(p.name)} <span class="muted">(${escape(p.userId)})</span></div>
        ${p.site === ui.overview?.active ? `<span class="tag">${tr("home.active")}</span>` : ""}
      </li>`,
    )
    .join("");
  const recent = (ui.overview?.recentCalls ?? [])
    .slice(0, 8)
    .map((c) => {
      const when = new Date(c.endedAt * 1000).toLocaleString(ui.language === "ja" ? "ja-JP" : "en-GB", {
        month: "numeric",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
      });
      const what = c.talkSec > 0 ? duration(ui.language, c.talkSec) : reasonText(ui.language, c.reason);
      return `<li><span class="dir ${c.outgoing ? "out" : "in"}">${c.outgoing ? "↗" : "↙"}</span>
        <span class="peer">${escape(c.peerName)}</span><span class="muted">${escape(what)}</span><span class="when">${when}</span></li>`;
    })
    .join("");
  const pushes = ui.state.pushes
    .map((p, i) => {
      const when = new Date(p.at).toLocaleTimeString(ui.language === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit" });
      const open = p.clickAction ? `<button class="link" data-action="open-push" data-index="${i}">${tr("home.openMessage")}</button>` : "";
      return `<li><div><b>${escape(p.title)}</b> <span class="when">${when}</span></div><div>${escape(p.body)}</div>${open}</li>`;
    })
    .join("");
  const online = ui.state.online
    ? `<span class="status online"></span>${tr("home.online")}`
    : ui.state.offlineRetrySec !== undefined
      ? `<span class="status offline"></span>${tr("home.offline", { sec: ui.state.offlineRetrySec })}`
      : "";
  return `${header()}
  <main class="home">
    <section class="card profiles"><h2>${tr("home.profiles")}</h2><ul>${profiles}</ul>
      ${profile && ui.overview && ui.overview.profiles.length > 1 ? `<button class="link danger" data-action="remove">${tr("home.remove")}</button>` : ""}
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
      ${ui.showEffects ? effectsPanel() : ""}
      ${ui.showDevices ? devicePanel() : ""}
      <div class="card"><h2>${tr("home.recent")}</h2>${recent ? `<ul class="recent">${recent}</ul>` : `<p class="muted">${tr("home.noRecent")}</p>`}</div>
      <p class="muted small">${tr("home.hint")}</p>
      ${ui.overview ? `<p class="muted small" data-testid="secrets">${tr(ui.overview.secrets === "keychain" ? "home.secretsKeychain" : "home.secretsFile")}</p>` : ""}
    </section>
  </main>`;
}
