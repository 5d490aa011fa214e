// A picture stream from the engine onto a canvas: one WebSocket message per
// picture (see src-tauri/src/video_feed.rs), acked once drawn so the engine
// only ever sends the newest picture.

export interface FeedAddress {
  port: number;
  token: string;
}

export interface FeedPicture {
  width: number;
  height: number;
  captureUs: bigint;
  pixels: Uint8ClampedArray;
}

const HEADER = 16;

/// One feed message as a picture; `null` for the empty "stream stopped" message.
export function parsePicture(message: ArrayBuffer): FeedPicture | null {
  if (message.byteLength < HEADER) return null;
  const view = new DataView(message);
  const width = view.getUint32(0, true);
  const height = view.getUint32(4, true);
  const captureUs = view.getBigUint64(8, true);
  const expected = width * height * 4;
  if (message.byteLength - HEADER !== expected) {
    throw new Error(`a ${width}×${height} picture needs ${expected} bytes, got ${message.byteLength - HEADER}`);
  }
  return { width, height, captureUs, pixels: new Uint8ClampedArray(message, HEADER) };
}

export class VideoView {
  private socket?: WebSocket;
  private frames = 0;
  fps = 0;
  private countedAt = performance.now();

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly stream: "local" | "remote",
    private readonly feed: FeedAddress,
    /// Text drawn over every picture (the recording watermark), or nothing.
    private readonly watermark?: () => string,
  ) {}

  start(): void {
    // The engine sends pictures no larger than the canvas shows them.
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(this.canvas.clientWidth * ratio);
    const height = Math.round(this.canvas.clientHeight * ratio);
    const fit = width >= 2 && height >= 2 ? `&width=${width}&height=${height}` : "";
    const url = `ws://127.0.0.1:${this.feed.port}/${this.stream}?token=${encodeURIComponent(this.feed.token)}&format=rgba${fit}`;
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => {
      this.draw(message.data as ArrayBuffer);
      socket.send("drawn");
    };
    socket.onclose = () => {
      // The app outlives calls; a closed feed comes back while the view is shown.
      if (this.socket === socket) setTimeout(() => this.socket === socket && this.start(), 500);
    };
    this.socket = socket;
  }

  stop(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
  }

  private draw(message: ArrayBuffer): void {
    const context = this.canvas.getContext("2d");
    if (!context) return;
    const picture = parsePicture(message);
    if (!picture) {
      context.clearRect(0, 0, this.canvas.width, this.canvas.height);
      this.canvas.classList.add("empty");
      return;
    }
    this.canvas.classList.remove("empty");
    if (this.canvas.width !== picture.width || this.canvas.height !== picture.height) {
      this.canvas.width = picture.width;
      this.canvas.height = picture.height;
    }
    context.putImageData(new ImageData(picture.pixels as Uint8ClampedArray<ArrayBuffer>, picture.width, picture.height), 0, 0);
    if (this.watermark) drawWatermark(context, picture.width, picture.height, this.watermark());
    this.frames += 1;
    const now = performance.now();
    if (now - this.countedAt >= 1000) {
      this.fps = (this.frames * 1000) / (now - this.countedAt);
      this.frames = 0;
      this.countedAt = now;
    }
  }
}

/// The viewer's ID and the time, tiled faintly across the picture and once
/// plainly in a corner: a recording made anyway names who made it and when.
function drawWatermark(context: CanvasRenderingContext2D, width: number, height: number, text: string): void {
  const size = Math.max(14, Math.round(height / 28));
  context.save();
  context.font = `${size}px sans-serif`;
  context.fillStyle = "rgba(255,255,255,0.16)";
  context.translate(width / 2, height / 2);
  context.rotate(-Math.PI / 8);
  const step = size * 9;
  for (let y = -height; y < height; y += step / 2) {
    for (let x = -width; x < width; x += step * 1.6) {
      context.fillText(text, x + ((y / (step / 2)) % 2) * step * 0.8, y);
    }
  }
  context.restore();
  context.save();
  context.font = `${size}px sans-serif`;
  context.fillStyle = "rgba(0,0,0,0.45)";
  const metrics = context.measureText(text);
  context.fillRect(8, height - size * 1.8, metrics.width + 16, size * 1.5);
  context.fillStyle = "rgba(255,255,255,0.9)";
  context.fillText(text, 16, height - size * 0.65);
  context.restore();
}
