import { describe, expect, it } from "vitest";
import { answerIn, keepFamily } from "../src/web/candidates";

const answer = [
  "v=0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "a=candidate:1 1 udp 2130706431 192.0.2.7 40000 typ host",
  "a=candidate:2 1 udp 2130706431 2001:db8::7 40002 typ host",
  "a=candidate:3 1 tcp 1518280447 192.0.2.7 7881 typ host tcptype passive",
  "a=candidate:4 1 udp 2113937151 0b5c1a2e.local 50000 typ host",
  "a=end-of-candidates",
  "",
].join("\r\n");

describe("candidateMode in the web version", () => {
  it("keeps the server's candidates of the family the site names", () => {
    const v4 = keepFamily(answer, 1);
    expect(v4).toContain("192.0.2.7 40000");
    expect(v4).toContain("192.0.2.7 7881");
    expect(v4).not.toContain("2001:db8::7");
    const v6 = keepFamily(answer, 2);
    expect(v6).toContain("2001:db8::7");
    expect(v6).not.toContain("192.0.2.7");
    // An mDNS name's family is unknown: kept. Everything else is untouched.
    expect(v6).toContain("0b5c1a2e.local");
    expect(v6).toContain("a=end-of-candidates\r\n");
  });

  it("reads the server's answer with the family kept", () => {
    const restricted = answerIn(JSON.stringify({ type: "answer", sdp: answer }), 1);
    expect(restricted.type).toBe("answer");
    expect(restricted.sdp).not.toContain("2001:db8::7");
  });

  it("leaves the description as it is for both families or none", () => {
    expect(keepFamily(answer, 3)).toBe(answer);
    expect(keepFamily(answer, undefined)).toBe(answer);
  });
});
