// A call's screens: outgoing, incoming and in the call.

import { type CallView, recordingAllowed } from "../state";
import { micMeter } from "./panels";
import { ui, tr, escape, icon } from "../view";

function avatar(call: CallView): string {
  const initial = `<div class="avatar">${escape([...call.peerName][0] ?? "?")}</div>`;
  // A picture that cannot load gives way to the initial (see render()).
  return call.peerImageUrl ? `<img class="avatar" src="${escape(call.peerImageUrl)}" alt="" data-initial="${escape([...call.peerName][0] ?? "?")}">` : initial;
}

export function outgoingScreen(call: CallView): string {
  return `<main class="dark center">
    ${avatar(call)}
    <div class="peer-name">${escape(call.peerName)}</div>
    <div class="status-line" data-bind="ringing">${tr("outgoing.preparing")}</div>
    <button class="round danger" data-action="hangup" title="${tr("outgoing.cancel")}">${icon("hangup")}</button>
    <div class="under">${tr("outgoing.cancel")}</div>
  </main>`;
}

export function incomingScreen(call: CallView): string {
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
  return ui.windowProtected ? tr("protection.blocked") : tr("protection.watermark");
}

export function inCallScreen(call: CallView): string {
  return `<main class="call">
    <canvas data-video="remote" class="video remote empty"></canvas>
    <canvas data-video="local" class="video own empty"></canvas>
    <div class="call-top">
      <div><div class="peer-name small">${escape(call.peerName)}</div><div data-bind="elapsed"></div></div>
      <div class="right"><div data-bind="time-left"></div><div data-bind="verdict"></div></div>
    </div>
    <div class="protection">${protectionText(call)}</div>
    ${call.reconnecting ? `<div class="warn floating" role="status" aria-live="polite">${tr("incall.reconnecting")}</div>` : ""}
    <div class="warn floating devices" data-bind="missing-devices"></div>
    ${ui.state.refused.length ? `<div class="warn floating">${tr("effects.refused", { list: ui.state.refused.join(" / ") })}</div>` : ""}
    <div class="call-meter">${micMeter()}</div>
    <div class="toolbar">
      <button class="round ${ui.switches.microphone ? "" : "off"}" data-action="mic" title="${ui.switches.microphone ? tr("incall.mute") : tr("incall.unmute")}">${icon(ui.switches.microphone ? "mic" : "micOff")}</button>
      <button class="round ${ui.switches.camera ? "" : "off"}" data-action="camera" title="${ui.switches.camera ? tr("incall.cameraOff") : tr("incall.cameraOn")}">${icon(ui.switches.camera ? "camera" : "cameraOff")}</button>
      <button class="round danger" data-action="hangup" title="${tr("incall.hangup")}">${icon("hangup")}</button>
    </div>
  </main>`;
}
