#!/usr/bin/env python3
"""An independent reference for attend::audio::LogMel (tests/audio/test_audio.cc runs it).

Reads a 16-bit PCM mono WAV with the standard library's `wave`, computes log-mel features in
float64 with NumPy only (its own periodic Hann window, numpy.fft.rfft, HTK mel filters, log of
max(energy, floor)) as include/attend/audio.h describes them, and writes

    int64 frames, int64 bins, then frames * bins float64 values (row-major), little-endian

to --out. The C++ side uses float32 FFTW; the test compares the two.
"""
import argparse
import sys
import wave

import numpy as np


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            sys.exit(f"{path}: expected 16-bit mono, got {8 * w.getsampwidth()}-bit "
                     f"x {w.getnchannels()} channels")
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filters(n_fft, rate, n_mels, low, high):
    """[n_fft // 2 + 1, n_mels]: triangles between mel-spaced points, at the FFT bins' Hz."""
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    points = mel_to_hz(np.linspace(hz_to_mel(low), hz_to_mel(high), n_mels + 2))
    fb = np.zeros((freqs.size, n_mels))
    for m in range(n_mels):
        left, centre, right = points[m], points[m + 1], points[m + 2]
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        fb[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb


def log_mel(x, rate, window_ms, hop_ms, n_fft, n_mels, low, high, floor):
    win = int(round(window_ms * rate / 1000.0))
    hop = int(round(hop_ms * rate / 1000.0))
    high = rate / 2.0 if high == 0 else high
    frames = 0 if x.size < win else 1 + (x.size - win) // hop
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)  # periodic Hann
    fb = mel_filters(n_fft, rate, n_mels, low, high)
    out = np.empty((frames, n_mels))
    for t in range(frames):
        padded = np.zeros(n_fft)
        padded[:win] = x[t * hop:t * hop + win] * window
        power = np.abs(np.fft.rfft(padded)) ** 2
        out[t] = np.log(np.maximum(power @ fb, floor))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wav", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--window-ms", type=float, default=25.0)
    p.add_argument("--hop-ms", type=float, default=10.0)
    p.add_argument("--fft", type=int, default=512)
    p.add_argument("--mels", type=int, default=80)
    p.add_argument("--low", type=float, default=20.0)
    p.add_argument("--high", type=float, default=0.0)
    p.add_argument("--floor", type=float, default=1e-7)
    a = p.parse_args()
    x, rate = read_wav(a.wav)
    f = log_mel(x, rate, a.window_ms, a.hop_ms, a.fft, a.mels, a.low, a.high, a.floor)
    with open(a.out, "wb") as out:
        out.write(np.array(f.shape, dtype="<i8").tobytes())
        out.write(f.astype("<f8").tobytes())
    print(f"logmel_reference: {f.shape[0]} frames x {f.shape[1]} bins at {rate} Hz -> {a.out}")


if __name__ == "__main__":
    main()
