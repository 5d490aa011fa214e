// The video test: both pictures, the meter, the quality charts, the panels.

import { devicePanel, micMeter, effectsPanel, qualityBlock } from "./panels";
import { tr, header } from "../view";

export function videoTestScreen(): string {
  return `${header()}
  <main class="test">
    <section class="test-main">
      <h1>${tr("test.title")}</h1>
      <div class="pair">
        <figure><canvas data-video="local" class="video empty"></canvas><figcaption>${tr("test.own")}</figcaption></figure>
        <figure><canvas data-video="remote" class="video empty"></canvas><figcaption>${tr("test.returned")}</figcaption></figure>
      </div>
      <p class="muted small devices" data-bind="devices"></p>
      ${micMeter()}
      ${qualityBlock()}
      <button class="danger wide" data-action="hangup">${tr("test.end")}</button>
    </section>
    <aside>${devicePanel()}${effectsPanel()}</aside>
  </main>`;
}
