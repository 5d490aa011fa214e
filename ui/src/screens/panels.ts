// The panels screens share: effects, devices, the microphone meter and the
// quality charts.

import { convertFileSrc } from "@tauri-apps/api/core";
import { type MessageKey } from "../i18n";
import { ui, tr, escape } from "../view";

/// The speaker test's outcome in the screen's language (it may change after the click).
export function speakerTestText(): string {
  if (!ui.speakerTest) return "";
  return "played" in ui.speakerTest
    ? tr("devices.speakerTestPlayed", { name: ui.speakerTest.played })
    : tr("devices.speakerTestFailed", { why: ui.speakerTest.failed });
}

function option(group: string, value: string, label: string, chosen: boolean, preview?: string | null): string {
  const picture = preview ? `<img src="${convertFileSrc(preview)}" alt="">` : "";
  return `<button class="choice ${chosen ? "chosen" : ""}" data-action="effect" data-group="${group}" data-value="${escape(value)}">${picture}<span>${escape(label)}</span></button>`;
}

const COLOURS = ["#2e7d32", "#1565c0", "#f5f5f5"];

function devicePicker(kind: "camera" | "microphone" | "speaker", names: string[], chosen: string | null): string {
  // A remembered device that is not connected now stays listed, so the choice is not lost silently.
  const all = chosen && !names.includes(chosen) ? [...names, chosen] : names;
  const options = [`<option value="">${tr("devices.systemDefault")}</option>`, ...all.map((n) => `<option value="${escape(n)}" ${n === chosen ? "selected" : ""}>${escape(n)}</option>`)].join("");
  return `<label class="picker"><span>${tr(`devices.${kind}Label` as MessageKey)}</span><select data-device="${kind}">${options}</select></label>`;
}

export function devicePanel(): string {
  if (!ui.deviceList) return `<div class="card devices-panel"><p class="muted">…</p></div>`;
  const c = ui.deviceList.chosen;
  const toggle = (key: "noiseSuppression" | "gainControl") =>
    `<label class="toggle"><input type="checkbox" data-device="${key}" ${c[key] ? "checked" : ""}><span>${tr(`devices.${key}` as MessageKey)}</span></label>`;
  return `<div class="card devices-panel"><h2>${tr("devices.title")}</h2>
    ${devicePicker("camera", ui.deviceList.cameras, c.camera)}
    ${devicePicker("microphone", ui.deviceList.microphones, c.microphone)}
    ${devicePicker("speaker", ui.deviceList.speakers, c.speaker)}
    <div class="toggles">${toggle("noiseSuppression")}${toggle("gainControl")}</div>
    <button data-action="speaker-test">${tr("devices.speakerTest")}</button>
    <p class="muted small" data-bind="speaker-test">${escape(speakerTestText())}</p>
    <p class="muted small">${tr("devices.appliesNext")}</p></div>`;
}

/// The microphone's level as the engine sends it, −60…0 dBFS across the bar.
export function micMeter(): string {
  return `<div class="meter" title="${tr("devices.micLevel")}"><span class="meter-label" data-bind="meter-label">${tr("devices.micLevel")}</span><div class="meter-bar"><i data-meter="mic"></i></div></div>`;
}

export function effectsPanel(): string {
  if (!ui.catalogue) return `<div class="card effects"><p class="muted">…</p></div>`;
  const chosen = ui.catalogue.chosen;
  const wallpapers = [
    option("wallpaper", "", tr("effects.none"), !chosen.wallpaper),
    option("wallpaper", "blur", tr("effects.blur"), chosen.wallpaper === "blur"),
    ...COLOURS.map((c) => option("wallpaper", `colour:${c}`, tr("effects.colour"), chosen.wallpaper === `colour:${c}`).replace("<span>", `<i class="swatch" style="background:${c}"></i><span>`)),
    ...ui.catalogue.wallpapers.map((w) => option("wallpaper", w.id, w.label, chosen.wallpaper === w.id, w.preview)),
  ].join("");
  const mosaic = [
    option("mosaic", "", tr("effects.none"), !chosen.mosaic),
    option("mosaic", "faces", tr("effects.mosaicFaces"), chosen.mosaic === "faces"),
    option("mosaic", "whole", tr("effects.mosaicWhole"), chosen.mosaic === "whole"),
  ].join("");
  const filters = [
    option("faceFilter", "", tr("effects.none"), !chosen.faceFilter),
    ...ui.catalogue.faceFilters.map((f) => option("faceFilter", f.id, f.label, chosen.faceFilter === f.id, f.preview)),
  ].join("");
  const empty = ui.catalogue.wallpapers.length === 0 && ui.catalogue.faceFilters.length === 0;
  const refused = ui.state.refused.length ? `<p class="warn">${tr("effects.refused", { list: ui.state.refused.join(" / ") })}</p>` : "";
  return `<div class="card effects"><h2>${tr("effects.title")}</h2>
    <h3>${tr("effects.wallpaper")}</h3><div class="choices">${wallpapers}</div>
    <h3>${tr("effects.mosaic")}</h3><div class="choices">${mosaic}</div>
    <h3>${tr("effects.faceFilter")}</h3><div class="choices">${filters}</div>
    ${empty ? `<p class="muted small">${tr("effects.noFiles")}</p>` : ""}${refused}
    <p class="muted small">${tr("test.saved")}</p></div>`;
}

export function qualityBlock(): string {
  const charts: [string, MessageKey][] = [
    ["rtt", "quality.rtt"],
    ["loss", "quality.loss"],
    ["kbps", "quality.bitrate"],
    ["fps", "quality.fps"],
  ];
  return `<div class="card quality"><div class="quality-head"><span data-bind="verdict"></span><span class="muted" data-bind="route"></span></div>
    <div class="charts">${charts
      .map(([id, key]) => `<div class="chart"><div class="chart-label">${tr(key)} <b data-bind="q-${id}">—</b></div><canvas data-chart="${id}"></canvas></div>`)
      .join("")}</div></div>`;
}
