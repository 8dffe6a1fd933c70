"""The built-in audio nodes (resampling, energy VAD, sample format, channels, pass-through),
generated from the runtime's node definitions; see :mod:`remotemedia.nodes._generated`."""

from remotemedia.nodes._generated import (
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    PassThroughNode,
    VADNode,
)
from remotemedia.nodes.builtin import (
    BUILTIN_TYPES,
    BuiltinNode,
    SampleFormatName,
    _join,
    format_name,
    jsonable,
    params_json,
    validate_params,
)

__all__ = [
    "BUILTIN_TYPES",
    "AudioResampleNode",
    "BuiltinNode",
    "ChannelMixNode",
    "FormatConverterNode",
    "PassThroughNode",
    "SampleFormatName",
    "VADNode",
    "_join",
    "format_name",
    "jsonable",
    "params_json",
    "validate_params",
]
