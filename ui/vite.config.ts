import { defineConfig } from "vitest/config";

// Built into ui/dist, which src-tauri embeds (tauri.conf.json frontendDist).
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "safari15" },
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
