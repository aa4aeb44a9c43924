"""Network impairment in user space (no netem on these machines): a UDP relay."""

from callgauge_media.impair.relay import (
    DirectionStats,
    GilbertElliott,
    ImpairmentConfig,
    RelayStats,
    UdpImpairmentRelay,
    gilbert_elliott_params,
)

__all__ = [
    "DirectionStats",
    "GilbertElliott",
    "ImpairmentConfig",
    "RelayStats",
    "UdpImpairmentRelay",
    "gilbert_elliott_params",
]
