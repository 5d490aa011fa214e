// §3.3.3 candidateMode in the browser: an RTCPeerConnection cannot be told
// which IP family to use, so the descriptions are: without the server's
// candidates of the other family in its answer, no pair of that family
// exists to be checked.

/// 1: IPv4 only, 2: IPv6 only, 3 or none: both.
export type CandidateMode = number | null | undefined;

/// The description without the candidates of the family `mode` excludes
/// (mDNS names, whose family is unknown, stay).
export function keepFamily(sdp: string, mode: CandidateMode): string {
  if (mode !== 1 && mode !== 2) return sdp;
  const lines = sdp.split("\r\n").filter((line) => {
    if (!line.startsWith("a=candidate:")) return true;
    const address = line.split(" ")[4] ?? "";
    if (address.endsWith(".local")) return true;
    const v6 = address.includes(":");
    return mode === 2 ? v6 : !v6;
  });
  return lines.join("\r\n");
}

/// The server's answer (the JSON of a description), keeping to `mode`.
export function answerIn(answer: string, mode: CandidateMode): RTCSessionDescriptionInit {
  const description = JSON.parse(answer) as RTCSessionDescriptionInit;
  return { ...description, sdp: keepFamily(description.sdp ?? "", mode) };
}
