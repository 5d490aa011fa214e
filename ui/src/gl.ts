// The other way to draw a picture, measured against putImageData by the feed
// benchmark: the decoder's I420 planes uploaded as three luminance textures
// and turned into RGB by a fragment shader (BT.601 limited range, as the
// engine's own converter), so the page moves 1.5 bytes a pixel instead of 4.

const VERTEX = `attribute vec2 p; varying vec2 uv;
void main() { uv = vec2((p.x + 1.0) / 2.0, (1.0 - p.y) / 2.0); gl_Position = vec4(p, 0.0, 1.0); }`;

const FRAGMENT = `precision mediump float; varying vec2 uv;
uniform sampler2D y; uniform sampler2D u; uniform sampler2D v;
void main() {
  float Y = 1.164 * (texture2D(y, uv).r - 0.0625);
  float U = texture2D(u, uv).r - 0.5;
  float V = texture2D(v, uv).r - 0.5;
  gl_FragColor = vec4(Y + 1.596 * V, Y - 0.391 * U - 0.813 * V, Y + 2.018 * U, 1.0);
}`;

export class I420Renderer {
  private readonly gl: WebGLRenderingContext;
  private readonly textures: WebGLTexture[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {
    const gl = canvas.getContext("webgl");
    if (!gl) throw new Error("no WebGL in this webview");
    this.gl = gl;
    const program = gl.createProgram()!;
    for (const [type, source] of [
      [gl.VERTEX_SHADER, VERTEX],
      [gl.FRAGMENT_SHADER, FRAGMENT],
    ] as const) {
      const shader = gl.createShader(type)!;
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    gl.useProgram(program);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const position = gl.getAttribLocation(program, "p");
    gl.enableVertexAttribArray(position);
    gl.vertexAttribPointer(position, 2, gl.FLOAT, false, 0, 0);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    ["y", "u", "v"].forEach((name, unit) => {
      const texture = gl.createTexture()!;
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, texture);
      for (const parameter of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, parameter, gl.CLAMP_TO_EDGE);
      for (const parameter of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, parameter, gl.LINEAR);
      gl.uniform1i(gl.getUniformLocation(program, name), unit);
      this.textures.push(texture);
    });
  }

  /// Draws one feed message's I420 planes (after the 16-byte header).
  draw(message: ArrayBuffer, width: number, height: number): void {
    const gl = this.gl;
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
      gl.viewport(0, 0, width, height);
    }
    const cw = Math.ceil(width / 2);
    const ch = Math.ceil(height / 2);
    const planes: [number, number, number][] = [
      [16, width, height],
      [16 + width * height, cw, ch],
      [16 + width * height + cw * ch, cw, ch],
    ];
    planes.forEach(([offset, w, h], unit) => {
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, this.textures[unit]);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, w, h, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, new Uint8Array(message, offset, w * h));
    });
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}
