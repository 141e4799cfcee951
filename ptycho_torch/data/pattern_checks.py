"""The diffraction patterns checked against the probe, the physics tying them: DC where the probe's far field
puts it (the centre), a power that Parseval ties to the probe's (float intensities told from amplitudes by it),
and an (n, n, n) stack's layout told by which reading's mean pattern looks like the probe's far field. A
chunk of patterns at a time: no float64 copy of a whole stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .file_errors import DataFileError

__all__ = ["checked_scale", "chunks", "cube_layout", "square_root"]

CHUNK = 256  # patterns a check or conversion takes at a time: no float64 or boolean copy of a whole stack


def chunks(n: int) -> list[slice]:
    """``n`` patterns as slices of at most CHUNK."""
    return [slice(start, start + CHUNK) for start in range(0, n, CHUNK)]


def square_root(intensities: np.ndarray) -> np.ndarray:
    """√I as float32 (computed in float64), a chunk of patterns at a time."""
    out = np.empty(intensities.shape, dtype=np.float32)
    for part in chunks(len(intensities)):
        out[part] = np.sqrt(intensities[part].astype(np.float64))
    return out


# mean |object|² (Parseval: mean Σ amplitude² / Σ |probe|²) of a transmission object (|O| ≤ 1), with room
# for noise and weak objects; a truth in the file narrows it to a factor TRUTH_BAND around its own
PARSEVAL_RANGE = (1e-2, 2.0)
TRUTH_BAND = 4.0
CLEAR_CALL = 4.0  # how much better one DC placement must explain the patterns to be called


def _probe_far_field_power(probe: np.ndarray) -> np.ndarray:
    """|FFT(probe)|² (orthonormal, DC at the centre): where a scan's diffracted power mostly lands."""
    return np.abs(np.fft.fftshift(np.fft.fft2(probe.astype(np.complex128), norm="ortho"))) ** 2


def _dc_at_corner(mean_pattern: np.ndarray, probe: np.ndarray) -> bool:
    """Whether the patterns' mean power sits where the probe's far field would put it with DC at the
    corner (``ifftshift``ed) rather than the centre, by a clear margin."""
    expected = _probe_far_field_power(probe)
    centre = float(np.sum(mean_pattern * expected))
    corner = float(np.sum(mean_pattern * np.fft.ifftshift(expected)))
    return corner > CLEAR_CALL * centre


def checked_scale(path: Path, key: str, amplitudes: np.ndarray, probe: np.ndarray,
                   truth: np.ndarray | None, notes: list[str]) -> np.ndarray:
    """The amplitudes, checked against the probe: DC where the model puts it (the centre), and a power
    that Parseval ties to the probe's, mean Σ amplitude² ≈ mean |object|² · Σ |probe|². Float intensities
    stored as amplitudes fit that only as Σ I, and are converted to √I with a note; a file whose probe
    and patterns fit neither gets a note (the reference's normalized amplitude files do not fit)."""
    mean_pattern = np.zeros(amplitudes.shape[1:])
    per_pattern = np.empty((2, len(amplitudes)))  # Σ d² and Σ d of each pattern
    truth_power = 0.0
    for part in chunks(len(amplitudes)):
        chunk = amplitudes[part].astype(np.float64)
        mean_pattern += np.square(chunk).sum(axis=0) / len(amplitudes)
        per_pattern[:, part] = np.square(chunk).sum(axis=(1, 2)), chunk.sum(axis=(1, 2))
        if truth is not None:
            truth_power += float(np.square(np.abs(truth[part].astype(np.complex128) * probe)).sum())
    if _dc_at_corner(mean_pattern, probe):
        raise DataFileError(path, key, "the patterns have their DC (zero frequency) at the corner, where the probe's "
                            "far field puts it at the centre: store them DC-centred (np.fft.fftshift over the last "
                            "two axes)")
    probe_power = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
    as_amplitudes, as_intensities = (float(v) / probe_power for v in per_pattern.mean(axis=1))
    if truth is not None:  # the probe-weighted power of the true patches: what the ratio must be
        expected = truth_power / len(amplitudes) / probe_power
        low, high = expected / TRUTH_BAND, expected * TRUTH_BAND
    else:
        low, high = PARSEVAL_RANGE
    if low <= as_amplitudes <= high:
        return amplitudes
    if low <= as_intensities <= high:
        notes.append(f"{key}: float intensities (mean Σ d² / Σ|probe|² = {as_amplitudes:.3g}, Σ d / Σ|probe|² = "
                     f"{as_intensities:.3g}, where about mean |object|² is expected) converted to amplitudes √I")
        return square_root(amplitudes)
    notes.append(f"{key}: mean Σ amplitude² / Σ|probe|² = {as_amplitudes:.3g}, where Parseval expects about mean "
                 f"|object|² ({low:.3g} … {high:.3g}): probe and patterns may be in different units")
    return amplitudes


def cube_layout(path: Path, key: str, data: np.ndarray, probe: np.ndarray, notes: list[str]) -> np.ndarray:
    """An (n, n, n) stack with n scan positions is (n, H, W) or (H, W, n): the layout whose mean pattern
    looks like the probe's far field (Pearson correlation of the powers), where one clearly does."""
    if probe.shape != data.shape[1:]:
        return data  # _probe names the mismatch
    expected = _probe_far_field_power(probe).ravel()
    power = data.astype(np.float64) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat mean pattern correlates with nothing: nan
        scores = [float(np.corrcoef(power.mean(axis=axis).ravel(), expected)[0, 1]) for axis in (0, 2)]
    scores = [score if np.isfinite(score) else 0.0 for score in scores]
    if max(scores) < 0.5 or abs(scores[0] - scores[1]) < 0.2:
        raise DataFileError(path, key, f"shape {data.shape} with {data.shape[0]} scan positions is (n, H, W) or "
                            "(H, W, n), and neither layout's mean pattern clearly matches the probe's far field "
                            f"(correlations {scores[0]:.2f} and {scores[1]:.2f}): store it as (n, H, W) with a "
                            "different number of positions, or check the probe")
    if scores[1] > scores[0]:
        notes.append(f"{key}: an (n, n, n) stack read as (H, W, n), whose mean pattern matches the probe's far field "
                     f"(correlation {scores[1]:.2f} against {scores[0]:.2f}), and moved to (n, H, W)")
        return np.moveaxis(data, 2, 0)
    return data
