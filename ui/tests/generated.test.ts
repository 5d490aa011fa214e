// The generated types follow the Rust types: a change to a message or an
// event on the Rust side that was not regenerated here fails.
import { readFile } from "node:fs/promises";
import { expect, it } from "vitest";
import { MODULE, generate } from "../scripts/types.mjs";

it(`${MODULE} is what the Rust types' schemas give`, async () => {
  const committed = await readFile(new URL(`../../${MODULE}`, import.meta.url), "utf8");
  expect(committed, `${MODULE} is out of date: run \`npm run types\` in ui/`).toBe(await generate());
});
