// The video test's live plot of the connection: four small charts drawn on
// canvases from the last minute of quality reports.

import type { Quality } from "./state";

export interface Series {
  rttMs: number[];
  lossPercent: number[];
  kbps: number[];
  fps: number[];
}

/// The plotted values, one per second; a second without a measurement repeats none.
export function series(reports: Quality[]): Series {
  return {
    rttMs: reports.map((q) => q.rttMs ?? 0),
    lossPercent: reports.map((q) => Math.max(q.lossInbound, q.lossOutbound) * 100),
    kbps: reports.map((q) => q.receiveKbps),
    fps: reports.map((q) => q.receiveFps),
  };
}

/// Upper bound of a chart: the largest value rounded up to a readable step, never below `floor`.
export function scaleTop(values: number[], floor: number): number {
  const top = Math.max(floor, ...values);
  const magnitude = 10 ** Math.floor(Math.log10(top));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (top <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

export function drawChart(canvas: HTMLCanvasElement, values: number[], floor: number, colour: string, windowSize: number): void {
  const context = canvas.getContext("2d");
  if (!context) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio;
  const height = canvas.clientHeight * ratio;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  context.clearRect(0, 0, width, height);
  context.strokeStyle = "rgba(0,0,0,0.08)";
  context.lineWidth = 1;
  for (let i = 1; i < 4; i += 1) {
    context.beginPath();
    context.moveTo(0, (height * i) / 4);
    context.lineTo(width, (height * i) / 4);
    context.stroke();
  }
  if (values.length === 0) return;
  const top = scaleTop(values, floor);
  const x = (i: number) => width - ((values.length - 1 - i) * width) / (windowSize - 1);
  const y = (v: number) => height - (Math.min(v, top) / top) * (height - 4) - 2;
  context.beginPath();
  values.forEach((v, i) => (i === 0 ? context.moveTo(x(i), y(v)) : context.lineTo(x(i), y(v))));
  context.lineTo(x(values.length - 1), height);
  context.lineTo(x(0), height);
  context.closePath();
  context.fillStyle = `${colour}22`;
  context.fill();
  context.beginPath();
  values.forEach((v, i) => (i === 0 ? context.moveTo(x(i), y(v)) : context.lineTo(x(i), y(v))));
  context.strokeStyle = colour;
  context.lineWidth = 2 * ratio;
  context.stroke();
  context.fillStyle = "rgba(0,0,0,0.45)";
  context.font = `${11 * ratio}px sans-serif`;
  context.fillText(String(top), 4 * ratio, 12 * ratio);
}

/// "host ⇄ srflx · UDP · IPv4" from a report's route.
export function routeText(q: Quality | undefined): string {
  if (!q?.route) return "—";
  return `${q.route.local} ⇄ ${q.route.remote} · ${q.route.protocol.toUpperCase()} · ${q.route.family}`;
}
