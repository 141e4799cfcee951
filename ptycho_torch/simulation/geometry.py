"""Where a simulated scan's detector sits: how its patterns are formed (far or near field) and what its CXI
file records, so that reading the file back gives the simulation's positions and propagator.

Far field: an object pixel dx on N detector pixels of size λz₂/(N·dx). Near field, a point focus z₁
before the sample and the detector z₂ after it: the detector pixel is dx·M, M = (z₁ + z₂)/z₁, and the
patterns are the exit wave propagated over z₂/M at dx (Fresnel scaling; ``ptycho_torch.optics``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..data.cxi import CxiGeometry, detector_basis
from ..optics import Propagation, Propagator

__all__ = ["SimulatedGeometry"]


class SimulatedGeometry(BaseModel):
    """The beamline of a simulated scan, in metres."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    propagation: Propagation = Field("far-field", description="far-field: the pattern is |FFT(probe·object)|; "
                                     "near-field: the exit wave Fresnel-propagated to the detector (in-line "
                                     "holography with a diverging beam).")
    wavelength: float = Field(1e-10, gt=0, allow_inf_nan=False,
                              description="The X-ray wavelength, m (1e-10: 12.4 keV).")
    object_pixel: float = Field(1e-7, gt=0, allow_inf_nan=False, description="The object's pixel, m.")
    detector_distance: float = Field(1.0, gt=0, allow_inf_nan=False, description="Sample to detector z₂, m.")
    focus_distance: float | None = Field(None, gt=0, allow_inf_nan=False, description="Near field only, and needed "
                                         "there: the beam's focus to the sample z₁, m (M = (z₁ + z₂)/z₁).")

    @model_validator(mode="after")
    def _focus_only_in_the_near_field(self) -> SimulatedGeometry:
        if self.propagation == "near-field" and self.focus_distance is None:
            raise ValueError("near-field propagation needs focus_distance (z₁, m; e.g. 1e-3 with the default "
                             "wavelength, pixel and detector distance: a Fresnel number of 0.1 per pixel)")
        if self.propagation == "far-field" and self.focus_distance is not None:
            raise ValueError("focus_distance is for near-field propagation: drop it, or set propagation = 'near-field'")
        return self

    def detector_pixel(self, N: int) -> float:
        """The detector pixel, m, that puts ``N`` patterns' object pixel at ``object_pixel``."""
        if self.propagation == "far-field":
            return self.wavelength * self.detector_distance / (N * self.object_pixel)
        assert self.focus_distance is not None
        return self.object_pixel * (self.focus_distance + self.detector_distance) / self.focus_distance

    def cxi_geometry(self, N: int) -> CxiGeometry:
        """The geometry a CXI reader finds for N × N patterns (the format's default detector axes)."""
        pixel = self.detector_pixel(N)
        return CxiGeometry(wavelength=self.wavelength, detector_distance=self.detector_distance,
                           basis=detector_basis(pixel, pixel), shape=(N, N), propagation=self.propagation,
                           focus_distance=self.focus_distance)

    def propagator(self, N: int) -> Propagator:
        return self.cxi_geometry(N).propagator()

    def fresnel_number(self) -> float | None:
        """dx²/(λ·z₂/M): one object pixel's Fresnel number over the effective distance (near field; None in
        the far field)."""
        if self.propagation == "far-field":
            return None
        assert self.focus_distance is not None
        magnification = (self.focus_distance + self.detector_distance) / self.focus_distance
        return self.object_pixel**2 * magnification / (self.wavelength * self.detector_distance)

