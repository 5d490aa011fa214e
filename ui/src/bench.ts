// The page's half of the display benchmark (src-tauri/src/feed_bench.rs):
// the app calls window.nexmileFeedBench(format) to draw the remote stream
// full-window one way or the other, and with null to stop.

import { I420Renderer } from "./gl";
import { type FeedAddress, parsePicture } from "./video";

const HEADER = 16;

export function installFeedBench(feed: () => FeedAddress | undefined): void {
  let socket: WebSocket | undefined;
  let canvas: HTMLCanvasElement | undefined;
  (window as unknown as { nexmileFeedBench: (format: string | null) => void }).nexmileFeedBench = (format) => {
    socket?.close();
    canvas?.remove();
    socket = undefined;
    canvas = undefined;
    const address = feed();
    if (!format || !address) return;
    canvas = document.createElement("canvas");
    canvas.style.cssText = "position:fixed;inset:0;width:100%;height:100%;background:#000;z-index:10";
    document.body.append(canvas);
    const target = canvas;
    const gl = format === "i420" ? new I420Renderer(target) : undefined;
    const context = gl ? undefined : target.getContext("2d");
    const ws = new WebSocket(`ws://127.0.0.1:${address.port}/remote?token=${encodeURIComponent(address.token)}&format=${format}`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (message) => {
      const data = message.data as ArrayBuffer;
      if (data.byteLength > HEADER) {
        const view = new DataView(data);
        const width = view.getUint32(0, true);
        const height = view.getUint32(4, true);
        if (gl) {
          gl.draw(data, width, height);
        } else if (context) {
          const picture = parsePicture(data)!;
          if (target.width !== width || target.height !== height) {
            target.width = width;
            target.height = height;
          }
          context.putImageData(new ImageData(picture.pixels as Uint8ClampedArray<ArrayBuffer>, width, height), 0, 0);
        }
      }
      ws.send("drawn");
    };
    socket = ws;
  };
}
