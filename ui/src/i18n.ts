// The screens' words, Japanese first. Every key exists in both languages
// (a test checks it); {name} placeholders are filled by t().

export type Language = "ja" | "en";

const ja = {
  "app.title": "Nexmile",
  "home.profiles": "登録サイト",
  "home.phone": "アプリ電話番号",
  "home.noPhone": "このサイトでは電話番号はありません",
  "home.recent": "最近の通話",
  "home.noRecent": "まだ通話はありません",
  "home.videoTest": "ビデオテスト",
  "home.effects": "エフェクト設定",
  "home.remove": "このサイトを削除",
  "home.removeConfirm": "「{site}」の登録と設定、ダウンロードしたファイルを削除します。よろしいですか？",
  "home.online": "オンライン（着信を受けられます）",
  "home.offline": "サーバに接続できません。{sec} 秒後に再接続します",
  "home.hint": "サイトのページにあるリンクからアプリを開くと、通話やライブが始まります。",
  "home.active": "表示中",
  "home.messages": "お知らせ",
  "home.openMessage": "開く",
  "home.secretsKeychain": "ログイン情報は OS のキーチェーンに保存されています",
  "home.secretsFile": "このOSにはキーチェーンがないため、ログイン情報はこのPC専用に暗号化したファイルに保存されています",
  "call.outgoing": "発信",
  "call.incoming": "着信",
  "call.minutes": "{m} 分 {s} 秒",
  "call.seconds": "{s} 秒",
  "link.invalid.title": "このリンクは開けません",
  "link.invalid.body": "サイトのリンクに誤りがあります。サイトの運営者にお問い合わせください。",
  "link.invalid.parameter": "問題のある項目: {parameter}",
  "link.busy": "通話またはテストの実行中です。終わってからもう一度リンクを開いてください。",
  "working.activate": "サイトに登録しています…",
  "working.download": "エフェクトをダウンロードしています…",
  "working.downloaded": "ダウンロードが完了しました（{count} ファイル）",
  "working.downloadFailed": "{count} 件のファイルをダウンロードできませんでした。もう一度お試しください。",
  "working.call": "発信の準備をしています…",
  "activated": "「{site}」に {name} さんとして登録しました",
  "test.title": "ビデオテスト",
  "test.own": "自分の映像（エフェクト適用後）",
  "test.returned": "サーバ経由で戻ってきた映像",
  "test.end": "テストを終了",
  "test.saved": "エフェクトの設定は保存され、この後の通話とライブに使われます。",
  "devices.camera": "カメラ: {name}",
  "devices.microphone": "マイク: {name}",
  "devices.noCamera": "カメラを使えないため、テスト映像を送っています",
  "devices.noMicrophone": "マイクを使えないため、テスト音を送っています",
  "devices.problem.no_device": "接続されていません",
  "devices.problem.busy": "ほかのアプリが使用中です",
  "devices.problem.cannot_open": "開けませんでした",
  "devices.problem.stopped": "途中で止まりました",
  "devices.problem.unsupported": "必要な解像度に対応していません",
  "quality.rtt": "往復遅延",
  "quality.loss": "パケット損失",
  "quality.bitrate": "ビットレート",
  "quality.fps": "フレームレート",
  "quality.route": "経路",
  "quality.good": "良好",
  "quality.fair": "やや不安定",
  "quality.poor": "不安定",
  "quality.waiting": "測定中…",
  "effects.title": "エフェクト",
  "effects.wallpaper": "背景",
  "effects.none": "なし",
  "effects.blur": "ぼかし",
  "effects.colour": "単色",
  "effects.mosaic": "モザイク",
  "effects.mosaicFaces": "顔だけ",
  "effects.mosaicWhole": "画面全体",
  "effects.faceFilter": "フェースフィルター",
  "effects.noFiles": "エフェクトのファイルがまだありません。サイトのエフェクトダウンロードのリンクを開いてください。",
  "effects.refused": "使えないエフェクト: {list}",
  "outgoing.preparing": "発信準備中…",
  "outgoing.ringing": "呼び出し中… 残り {sec} 秒",
  "outgoing.cancel": "発信をやめる",
  "incoming.title": "着信",
  "incoming.answer": "応答",
  "incoming.decline": "拒否",
  "incall.mute": "マイクをオフ",
  "incall.unmute": "マイクをオン",
  "incall.cameraOff": "カメラをオフ",
  "incall.cameraOn": "カメラをオン",
  "incall.hangup": "通話を終了",
  "incall.timeLeft": "残り通話時間 {time}",
  "incall.paidByOther": "料金は相手側のお支払いです",
  "incall.elapsed": "通話時間 {time}",
  "protection.blocked": "この画面は録画・画面共有から保護されています",
  "protection.watermark": "このOSでは録画を防げないため、映像に視聴者IDと時刻を表示しています",
  "protection.allowed": "この通話は録画が許可されています",
  "ended.title": "通話が終了しました",
  "ended.talk": "通話時間 {time}",
  "ended.return": "サイトへ戻る",
  "ended.home": "ホームへ",
  "refused.title": "ご利用いただけません",
  "error.title": "問題が発生しました",
  "reason.self": "通話を終了しました",
  "reason.1": "発信者が通話を終了しました",
  "reason.2": "相手が通話を終了しました",
  "reason.3": "利用可能時間が終了しました",
  "reason.4": "管理者により切断されました",
  "reason.-1": "発信が取り消されました",
  "reason.-2": "相手に着信を届けられませんでした",
  "reason.-4": "相手は通話中です",
  "reason.-5": "相手が着信を拒否しました",
  "reason.-6": "相手が応答しませんでした",
  "reason.-8": "通話を開始できませんでした",
  "reason.-9": "サーバの問題で通話が終了しました",
  "missed": "不在着信: {name}",
  "language": "English",
} as const;

export type MessageKey = keyof typeof ja;

const en: Record<MessageKey, string> = {
  "app.title": "Nexmile",
  "home.profiles": "Sites",
  "home.phone": "App phone number",
  "home.noPhone": "This site has no phone numbers",
  "home.recent": "Recent calls",
  "home.noRecent": "No calls yet",
  "home.videoTest": "Video test",
  "home.effects": "Effects",
  "home.remove": "Remove this site",
  "home.removeConfirm": "Remove \"{site}\" with its settings and downloaded files?",
  "home.online": "Online (you can receive calls)",
  "home.offline": "Cannot reach the server. Retrying in {sec} s",
  "home.hint": "Open a link on your site's page to start a call or a live.",
  "home.active": "Shown",
  "home.messages": "Messages",
  "home.openMessage": "Open",
  "home.secretsKeychain": "Sign-in tokens are kept in the system keychain",
  "home.secretsFile": "This system has no keychain: sign-in tokens are kept in a file encrypted for this computer",
  "call.outgoing": "Outgoing",
  "call.incoming": "Incoming",
  "call.minutes": "{m} min {s} s",
  "call.seconds": "{s} s",
  "link.invalid.title": "This link cannot be opened",
  "link.invalid.body": "The site's link is wrong. Please contact the site's operator.",
  "link.invalid.parameter": "Problem with: {parameter}",
  "link.busy": "A call or test is running. Open the link again when it has ended.",
  "working.activate": "Registering with the site…",
  "working.download": "Downloading effects…",
  "working.downloaded": "Download complete ({count} files)",
  "working.downloadFailed": "{count} files could not be downloaded. Please try again.",
  "working.call": "Preparing the call…",
  "activated": "Registered with \"{site}\" as {name}",
  "test.title": "Video test",
  "test.own": "Your picture (with effects)",
  "test.returned": "Your picture back through the server",
  "test.end": "End the test",
  "test.saved": "Effect settings are saved and used in later calls and lives.",
  "devices.camera": "Camera: {name}",
  "devices.microphone": "Microphone: {name}",
  "devices.noCamera": "No camera can be used: a test picture is sent instead",
  "devices.noMicrophone": "No microphone can be used: a test tone is sent instead",
  "devices.problem.no_device": "none is connected",
  "devices.problem.busy": "another app is using it",
  "devices.problem.cannot_open": "it could not be opened",
  "devices.problem.stopped": "it stopped",
  "devices.problem.unsupported": "it does not offer the size needed",
  "quality.rtt": "Round trip",
  "quality.loss": "Packet loss",
  "quality.bitrate": "Bitrate",
  "quality.fps": "Frame rate",
  "quality.route": "Route",
  "quality.good": "Good",
  "quality.fair": "Unsteady",
  "quality.poor": "Poor",
  "quality.waiting": "Measuring…",
  "effects.title": "Effects",
  "effects.wallpaper": "Background",
  "effects.none": "None",
  "effects.blur": "Blur",
  "effects.colour": "Colour",
  "effects.mosaic": "Mosaic",
  "effects.mosaicFaces": "Faces",
  "effects.mosaicWhole": "Whole picture",
  "effects.faceFilter": "Face filter",
  "effects.noFiles": "No effect files yet. Open your site's effect download link.",
  "effects.refused": "Not available: {list}",
  "outgoing.preparing": "Preparing…",
  "outgoing.ringing": "Ringing… {sec} s left",
  "outgoing.cancel": "Cancel",
  "incoming.title": "Incoming call",
  "incoming.answer": "Answer",
  "incoming.decline": "Decline",
  "incall.mute": "Mute",
  "incall.unmute": "Unmute",
  "incall.cameraOff": "Camera off",
  "incall.cameraOn": "Camera on",
  "incall.hangup": "Hang up",
  "incall.timeLeft": "Time left {time}",
  "incall.paidByOther": "The other side pays for this call",
  "incall.elapsed": "Talking {time}",
  "protection.blocked": "This screen is protected from recording and screen sharing",
  "protection.watermark": "This system cannot block recording, so the picture carries your ID and the time",
  "protection.allowed": "Recording is allowed for this call",
  "ended.title": "The call has ended",
  "ended.talk": "Talk time {time}",
  "ended.return": "Back to the site",
  "ended.home": "Home",
  "refused.title": "Not available",
  "error.title": "Something went wrong",
  "reason.self": "You ended the call",
  "reason.1": "The caller hung up",
  "reason.2": "The other side hung up",
  "reason.3": "Your available time ran out",
  "reason.4": "Disconnected by an administrator",
  "reason.-1": "The call was cancelled",
  "reason.-2": "The call could not reach the other side",
  "reason.-4": "The other side is busy",
  "reason.-5": "The other side declined",
  "reason.-6": "No answer",
  "reason.-8": "The call could not start",
  "reason.-9": "The call ended because of a server problem",
  missed: "Missed call: {name}",
  language: "日本語",
};

export const messages: Record<Language, Record<MessageKey, string>> = { ja, en };

export function t(
  language: Language,
  key: MessageKey,
  params: Record<string, string | number> = {},
): string {
  return messages[language][key].replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

/// A duration as people read it: "1 分 05 秒" / "45 秒".
export function duration(language: Language, totalSec: number): string {
  const sec = Math.max(0, Math.floor(totalSec));
  const m = Math.floor(sec / 60);
  const s = sec % 60;
  return m > 0
    ? t(language, "call.minutes", { m, s: String(s).padStart(2, "0") })
    : t(language, "call.seconds", { s });
}

/// A camera or microphone the engine captures from (its `devices` event).
export interface SourceInUse {
  name: string;
  synthetic: boolean;
  /// Why a test source stands in for the device (the system's words), and
  /// its code for the words of the screen's language.
  reason: string | null;
  problem?: string | null;
}

export interface Devices {
  camera: SourceInUse;
  microphone: SourceInUse;
}

/// What the screen says about the capture devices: one line each, the
/// device's name, or that a test source stands in and why (only the latter
/// when `onlyMissing`).
export function devicesText(language: Language, devices: Devices, onlyMissing = false): string[] {
  const line = (source: SourceInUse, named: MessageKey, missing: MessageKey): string | undefined => {
    if (source.reason) {
      const key = `devices.problem.${source.problem}` as MessageKey;
      const why = key in messages[language] ? t(language, key) : source.reason;
      return `${t(language, missing)} (${why})`;
    }
    return source.name && !onlyMissing ? t(language, named, { name: source.name }) : undefined;
  };
  return [
    line(devices.camera, "devices.camera", "devices.noCamera"),
    line(devices.microphone, "devices.microphone", "devices.noMicrophone"),
  ].filter((l): l is string => l !== undefined);
}

export function reasonText(language: Language, reason: number): string {
  const key = `reason.${reason}` as MessageKey;
  return key in messages[language] ? t(language, key) : t(language, "error.title");
}
