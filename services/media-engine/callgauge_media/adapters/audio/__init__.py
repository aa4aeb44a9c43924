"""Audio of calls: speech prompts to play, WAV conversion, and analysis of recordings
(alignment, silence/clipping flags, prompt matching, ViSQOL MOS-LQO)."""
