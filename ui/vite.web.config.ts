import { defineConfig } from "vite";

// The web version (spec §2.3.1 allowWeb): built into ui/dist-web, which the
// server serves under /web/ (every /web/<function>/ path gets web.html).
export default defineConfig({
  clearScreen: false,
  base: "/web/",
  build: { outDir: "dist-web", emptyOutDir: true, target: "es2022", rollupOptions: { input: "web.html" } },
});
