"""Japanese speech for the sound benchmark, made with Open JTalk
(pyopenjtalk-plus ships its dictionary and HTS voice): two talkers'
sentences as 48 kHz mono s16le files."""
import sys

import numpy as np
import pyopenjtalk

A = [
    "お電話ありがとうございます。ネクスマイルサポートセンターの山田でございます。",
    "本日はどのようなご用件でしょうか。",
    "ご契約内容の確認ですね。恐れ入りますが、お客様番号をお願いいたします。",
    "ありがとうございます。確認いたしますので、少々お待ちください。",
    "お待たせいたしました。来月から新しい料金プランが適用されます。",
    "ほかにご不明な点はございますか。本日は誠にありがとうございました。",
]
B = [
    "もしもし、先月の請求について伺いたいのですが。",
    "番号は、いち、に、さん、よん、ご、ろく、です。",
    "わかりました。よろしくお願いします。",
    "いいえ、大丈夫です。ありがとうございました。",
]


def talk(sentences, speed):
    pause = np.zeros(int(48000 * 0.6))
    parts = []
    for s in sentences:
        x, sr = pyopenjtalk.tts(s, speed=speed)
        assert sr == 48000, sr
        parts += [x, pause]
    pcm = np.concatenate(parts)
    # Speech at about -20 dBFS RMS, as a headset microphone gives it.
    pcm = pcm / np.sqrt(np.mean(pcm[np.abs(pcm) > 100] ** 2)) * 32768 * 0.1
    return np.clip(pcm, -32768, 32767).astype("<i2")


talk(A, 1.0).tofile(sys.argv[1])
talk(B, 1.1).tofile(sys.argv[2])
