"""Scores one run of client/benches/sound.rs: wideband PESQ (ITU-T P.862.2,
the `pesq` package) of what B heard against what A said, mouth-to-ear delay
per sentence by cross-correlation (median, p95), and the echo return loss
enhancement at A's speaker without and with double talk. Prints one JSON line."""
import json
import sys

import numpy as np
from pesq import pesq
from scipy.signal import correlate, resample_poly

RATE = 48000
FRAME = 480  # 10 ms


def load(path):
    return np.fromfile(path, dtype="<i2").astype(np.float64)


def lag_of(reference, signal, max_lag):
    """The delay of `reference` within `signal` (samples), by cross-correlation."""
    n = min(len(signal), len(reference) + max_lag)
    c = correlate(signal[:n], reference, mode="full", method="fft")
    zero = len(reference) - 1
    window = c[zero : zero + max_lag]
    return int(np.argmax(np.abs(window)))


def frames_power(x):
    n = len(x) // FRAME
    return (x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1)


def speech_segments(x, floor_db=-45.0, min_gap=30):
    """(start, end) samples of the stretches of speech (10 ms frames above floor)."""
    p = frames_power(x)
    active = 10 * np.log10(p / 32768**2 + 1e-12) > floor_db
    segments, start, quiet = [], None, 0
    for i, a in enumerate(active):
        if a:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= min_gap:
                segments.append((start * FRAME, (i - quiet + 1) * FRAME))
                start, quiet = None, 0
    if start is not None:
        segments.append((start * FRAME, len(active) * FRAME))
    return [(s, e) for s, e in segments if e - s > RATE // 4]


def main(run):
    said = load(f"{run}/a_mic.raw")  # A's microphone, on the recordings' clock
    b_heard = load(f"{run}/b_heard.raw")
    a_heard = load(f"{run}/a_heard.raw")
    b_mic = load(f"{run}/b_mic.raw")
    # Mouth to ear, sentence by sentence.
    delays = []
    for start, end in speech_segments(said):
        ref = said[start:end]
        region = b_heard[start : end + RATE]
        if len(region) < len(ref):
            continue
        delays.append(lag_of(ref, region, RATE) / RATE * 1000)
    delays = np.array(delays)
    overall = int(np.median(delays) / 1000 * RATE) if len(delays) else 0
    # PESQ over the whole speech, B's recording moved back by the median delay.
    segs = speech_segments(said)
    first, last = segs[0][0], segs[-1][1]
    ref = said[first:last]
    deg = b_heard[first + overall : last + overall]
    n = min(len(ref), len(deg))
    ref16 = resample_poly(ref[:n], 1, 3)
    deg16 = resample_poly(deg[:n], 1, 3)
    mos = pesq(16000, ref16 / 32768, deg16 / 32768, "wb")
    # And by halves: the first without double talk, the second with B talking over A.
    middle = segs[len(segs) // 2][0]
    halves = []
    for lo, hi in [(first, middle), (middle, last)]:
        r, d = said[lo:hi], b_heard[lo + overall : hi + overall]
        m = min(len(r), len(d))
        halves.append(round(float(pesq(16000, resample_poly(r[:m], 1, 3) / 32768, resample_poly(d[:m], 1, 3) / 32768, "wb")), 2))
    # Echo: what entered B's microphone from its speaker, against what came
    # back to A's speaker, over frames where A talks and B does not. The
    # first half has no double talk; B talks over the second.
    half = first + (last - first) // 2
    pa, pb_mic, pa_heard = frames_power(said), frames_power(b_mic), frames_power(a_heard)
    # B's microphone hears its own talk only in the second half: its frames
    # far above the echo level mark B talking.
    n = min(len(pa), len(pb_mic), len(pa_heard))
    back = int(np.median(delays) / 10) if len(delays) else 10  # A→B, in frames
    erle = {}
    for name, lo, hi in [("erle_db", first, half), ("erle_double_talk_db", half, last)]:
        i0, i1 = lo // FRAME, min(hi // FRAME, n - 2 * back - 1)
        echo, residual = [], []
        for i in range(i0, i1):
            if 10 * np.log10(pa[i] / 32768**2 + 1e-12) < -45:
                continue  # A silent here
            j = i + back + 5  # A's voice at B's speaker, 50 ms later at its microphone
            k = j + back  # and back at A's speaker
            if name == "erle_double_talk_db" and pb_mic[j] > 4 * np.median(pb_mic[i0 + back : i1 + back]):
                continue  # B talking in this frame: not echo alone
            echo.append(pb_mic[j])
            residual.append(pa_heard[k])
        erle[name] = round(10 * np.log10((np.sum(echo) + 1e-9) / (np.sum(residual) + 1e-9)), 1)
    print(
        json.dumps(
            {
                "pesq_wb": round(float(mos), 2),
                "pesq_wb_first_half": halves[0],
                "pesq_wb_second_half": halves[1],
                "mouth_to_ear_ms_median": round(float(np.median(delays)), 1) if len(delays) else None,
                "mouth_to_ear_ms_p95": round(float(np.percentile(delays, 95)), 1) if len(delays) else None,
                "sentences": len(delays),
                **erle,
            }
        )
    )


main(sys.argv[1])
