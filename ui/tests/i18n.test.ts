import { describe, expect, it } from "vitest";
import { devicesText, duration, messages, reasonText, t } from "../src/i18n";
import { parsePicture } from "../src/video";
import { scaleTop, series } from "../src/plot";

describe("words", () => {
  it("has every message in both languages, none empty", () => {
    const ja = Object.keys(messages.ja).sort();
    expect(Object.keys(messages.en).sort()).toEqual(ja);
    for (const lang of ["ja", "en"] as const) {
      for (const key of ja) expect(messages[lang][key as keyof typeof messages.ja].length).toBeGreaterThan(0);
    }
  });

  it("fills placeholders and says durations and reasons", () => {
    expect(t("ja", "outgoing.ringing", { sec: 12 })).toBe("呼び出し中… 残り 12 秒");
    expect(duration("ja", 65)).toBe("1 分 05 秒");
    expect(duration("en", 9)).toBe("9 s");
    expect(reasonText("ja", -5)).toBe("相手が着信を拒否しました");
    expect(reasonText("en", 42)).toBe("Something went wrong");
  });

  it("names the devices in use and says why one is missing or replaced", () => {
    const devices = {
      camera: { name: "", synthetic: false, reason: "no camera is connected", problem: "no_device" },
      microphone: { name: "USB Audio", synthetic: false, reason: null, problem: null },
      speaker: { name: "default", reason: "the speaker stopped delivering", problem: "stopped" },
    };
    expect(devicesText("ja", devices)).toEqual([
      "カメラを使えません。映像は送っていません (接続されていません)",
      "マイク: USB Audio",
      "選んだスピーカーを使えないため「default」に切り替えました (途中で止まりました)",
    ]);
    expect(devicesText("en", devices, true)).toEqual([
      "No camera can be used: no picture is sent (none is connected)",
      "The chosen speaker cannot be used, so default is used (it stopped)",
    ]);
    // A problem the screen has no words for is said in the system's.
    const odd = { ...devices, camera: { ...devices.camera, problem: "new_kind" } };
    expect(devicesText("en", odd, true)[0]).toBe("No camera can be used: no picture is sent (no camera is connected)");
    // A camera switched off before the call is not named (not opened yet); no speaker event, no line.
    expect(devicesText("en", { camera: { name: "", synthetic: false, reason: null, problem: null }, microphone: devices.microphone })).toEqual([
      "Microphone: USB Audio",
    ]);
  });
});

describe("pictures and plots", () => {
  it("reads a feed message and refuses a short one", () => {
    const message = new ArrayBuffer(16 + 2 * 2 * 4);
    const view = new DataView(message);
    view.setUint32(0, 2, true);
    view.setUint32(4, 2, true);
    view.setBigUint64(8, 99n, true);
    const picture = parsePicture(message);
    expect(picture?.width).toBe(2);
    expect(picture?.captureUs).toBe(99n);
    expect(picture?.pixels.length).toBe(16);
    expect(parsePicture(new ArrayBuffer(0))).toBeNull();
    expect(() => parsePicture(message.slice(0, 20))).toThrow(/needs 16 bytes/);
  });

  it("scales charts to readable steps", () => {
    expect(scaleTop([12, 37], 10)).toBe(50);
    expect(scaleTop([0.4], 5)).toBe(5);
    expect(scaleTop([1800], 500)).toBe(2000);
    const s = series([{ rttMs: null, lossInbound: 0.01, lossOutbound: 0.03, receiveKbps: 900, receiveFps: 30 } as never]);
    expect(s.rttMs).toEqual([0]);
    expect(s.lossPercent[0]).toBeCloseTo(3);
  });
});
