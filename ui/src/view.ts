// What every screen shares: the window's state (`ui`), the language, and
// the header, icons and closing buttons.

import { type Language, type MessageKey, t } from "./i18n";
import { type AppState, type Overview, initialState } from "./state";

/// What the window shows from: the engine's state and what the user opened.
export const ui: {
  language: Language;
  state: AppState;
  overview: Overview | null;
  catalogue: Catalogue | null;
  showEffects: boolean;
  deviceList: DeviceList | null;
  showDevices: boolean;
  speakerTest: { played: string } | { failed: string } | null;
  switches: { microphone: boolean; camera: boolean };
  windowProtected: boolean;
  lastComment: number | undefined;
  lastGift: number | undefined;
} = {
  language: (localStorage.getItem("language") as Language) ?? "ja",
  state: initialState,
  overview: null,
  catalogue: null,
  showEffects: false,
  /// The settings' device pickers: what there is and what the profile chose.
  deviceList: null,
  showDevices: false,
  /// The last speaker test: the speaker that played it, or why none could.
  speakerTest: null,
  switches: { microphone: true, camera: true },
  /// Whether the window is kept out of captures on this system (set per call).
  windowProtected: false,
  /// When this window last sent a comment or a gift (the page's clock), for
  /// the partner's nextAvailableCommentTime / nextAvailableGiftTime.
  lastComment: undefined,
  lastGift: undefined,
};

export interface Catalogue {
  wallpapers: CatalogueItem[];
  faceFilters: CatalogueItem[];
  chosen: { wallpaper?: string | null; mosaic?: string | null; faceFilter?: string | null };
  /// The site's effect files (gift pictures are found here).
  dir: string;
}

interface CatalogueItem {
  id: string;
  label: string;
  preview?: string | null;
}

interface DeviceSettings {
  camera: string | null;
  microphone: string | null;
  speaker: string | null;
  noiseSuppression: boolean;
  gainControl: boolean;
}

export interface DeviceList {
  cameras: string[];
  microphones: string[];
  speakers: string[];
  chosen: DeviceSettings;
}

export const tr = (key: MessageKey, params: Record<string, string | number> = {}) => t(ui.language, key, params);

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function activeProfile() {
  return ui.overview?.profiles.find((p) => p.site === ui.overview?.active);
}

export function header(): string {
  const profile = activeProfile();
  const dot = ui.state.online ? "online" : "offline";
  return `<header class="bar">
    <div class="brand"><span class="logo">N</span>${tr("app.title")}</div>
    <div class="who">${profile ? `<span class="status ${dot}"></span>${escape(profile.site)} · ${escape(profile.name)}` : ""}</div>
    <button class="ghost" data-action="language">${tr("language")}</button>
  </header>`;
}

// Icons drawn inline: no icon font or emoji font is needed on the machine.
const ICONS = {
  mic: '<path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z"/>',
  micOff: '<path d="M19 11h-2a5 5 0 0 1-.6 2.4l1.5 1.5A7 7 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.9-.7L15 10.2zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.5 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.6-1.5l3.1 3.1 1.3-1.3z"/>',
  camera: '<path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z"/>',
  cameraOff: '<path d="M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4-.1.5-.2l3.2 3.2 1.3-1.3z"/>',
  hangup: '<path d="M12 9c-1.6 0-3.2.3-4.6.7v3.1c0 .4-.2.7-.6.9-.9.5-1.8 1.1-2.5 1.8-.2.2-.4.3-.7.3s-.5-.1-.7-.3L.3 13c-.2-.2-.3-.4-.3-.7s.1-.5.3-.7C3.3 8.8 7.4 7 12 7s8.7 1.8 11.7 4.6c.2.2.3.4.3.7s-.1.5-.3.7l-2.5 2.5c-.2.2-.4.3-.7.3s-.5-.1-.7-.3c-.8-.7-1.6-1.3-2.5-1.8-.3-.2-.6-.5-.6-.9V9.7C15.2 9.3 13.6 9 12 9z"/>',
  answer: '<path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z"/>',
};

export function icon(name: keyof typeof ICONS): string {
  return `<svg viewBox="0 0 24 24" width="28" height="28" fill="currentColor" aria-hidden="true">${ICONS[name]}</svg>`;
}

export function closingButtons(): string {
  return `<div class="buttons">
    ${ui.state.returnUrl ? `<button class="primary" data-action="return">${tr("ended.return")}</button>` : ""}
    <button data-action="home">${tr("ended.home")}</button></div>`;
}
