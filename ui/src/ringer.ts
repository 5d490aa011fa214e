// The ring of an incoming call, made with Web Audio (no sound file to ship):
// the two-tone pattern of a Japanese phone, 0.4 s on, 0.2 s off, twice, then a pause.

export class Ringer {
  private context?: AudioContext;
  private timer?: ReturnType<typeof setInterval>;

  start(): void {
    if (this.timer !== undefined) return;
    try {
      this.context = new AudioContext();
    } catch {
      return; // No audio output: the screen still rings visibly.
    }
    const ring = () => this.burst();
    ring();
    this.timer = setInterval(ring, 3000);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    void this.context?.close();
    this.context = undefined;
  }

  private burst(): void {
    const context = this.context;
    if (!context) return;
    const at = context.currentTime;
    for (const offset of [0, 0.6]) {
      const gain = context.createGain();
      gain.gain.setValueAtTime(0, at + offset);
      gain.gain.linearRampToValueAtTime(0.2, at + offset + 0.02);
      gain.gain.setValueAtTime(0.2, at + offset + 0.38);
      gain.gain.linearRampToValueAtTime(0, at + offset + 0.4);
      gain.connect(context.destination);
      for (const hz of [400, 416]) {
        const tone = context.createOscillator();
        tone.frequency.value = hz;
        tone.connect(gain);
        tone.start(at + offset);
        tone.stop(at + offset + 0.4);
      }
    }
  }
}
