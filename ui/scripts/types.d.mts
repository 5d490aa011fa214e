// The generator's exports, for the test that checks its output.
export const MODULE: string;
export function generate(): Promise<string>;
