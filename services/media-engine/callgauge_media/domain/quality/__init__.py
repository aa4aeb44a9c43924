"""Voice-quality scoring for the media engine (pure Python, no I/O).

`emodel` implements the ITU-T G.107 E-model (and the G.107.1 wideband scale for
G.722 and opus, opus with estimated values): transmission rating factor R and the R -> MOS mapping.
"""

from callgauge_media.domain.quality.emodel import (
    CODEC_TABLE,
    CodecImpairment,
    EModelComponents,
    g107_components,
    is_estimate,
    is_wideband,
    mos,
    mos_from_r,
    r_factor,
    supported_codecs,
)

__all__ = [
    "CODEC_TABLE",
    "CodecImpairment",
    "EModelComponents",
    "g107_components",
    "is_estimate",
    "is_wideband",
    "mos",
    "mos_from_r",
    "r_factor",
    "supported_codecs",
]
