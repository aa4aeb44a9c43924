"""Reference speech prompts Callgauge ships, and where a test's ``play_file`` is found.

The prompts are synthesised with espeak-ng (Debian package ``espeak-ng``, installed by
install.sh) on first use into ``<media dir>/prompts/``; their text is ours, and the speech
espeak-ng produces from it is program output, not a copy of espeak-ng's GPL code, so it may be
redistributed freely. ``play_file`` names either a built-in prompt (``prompt:NAME``) or a WAV file
uploaded into the media directory (a bare file name: never a path, so a test cannot read other
files of the server). Every file is converted once to 16-bit PCM mono at the bridge's rate.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from callgauge_media.adapters.audio.wavfile import AudioFileError, convert_for_pjsua, is_pjsua_ready

PROMPT_PREFIX = "prompt:"
DEFAULT_PROMPT = "prompt:reference"  # what a call action plays when it names no tone and no file
SILENCE = "silence"  # play_file value: send silence (RTP still flows)
# name -> (text, espeak-ng voice)
PROMPTS: dict[str, tuple[str, str]] = {
    "reference": ("Thank you for calling. This is the Callgauge reference prompt. "
                  "The quick brown fox jumps over the lazy dog, and seven plus five makes twelve.", "en-us"),
    "greeting": ("Welcome to Callgauge support. For sales, press one. For billing, press two.", "en-us"),
    "goodbye": ("Your call has ended. Goodbye, and have a nice day.", "en-gb"),
}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.wav$")


class MediaNotFound(LookupError):
    """A ``play_file``/``expect_audio`` value that names no prompt or no file."""


def check_media_name(value: str) -> str | None:
    """Why ``value`` cannot be a media name, or None when its form is right."""
    if value == SILENCE:
        return None
    if value.startswith(PROMPT_PREFIX):
        name = value[len(PROMPT_PREFIX):]
        if name not in PROMPTS:
            return f"unknown prompt {name!r}; built-in prompts: {', '.join(sorted(PROMPTS))}"
        return None
    if not _FILE_NAME.match(value):
        return "must be prompt:NAME or the file name (no path) of a .wav in the media directory"
    return None


def synthesize(name: str, out: Path) -> Path:
    text, voice = PROMPTS[name]
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MediaNotFound("espeak-ng is not installed (install.sh installs it; Debian package espeak-ng)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.wav")  # threads and processes race
    try:
        subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(tmp), text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def resolve(value: str, media_dir: Path, rate: int = 16000) -> Path:
    """The 16-bit PCM mono WAV at ``rate`` for ``value`` (made on first use and cached)."""
    problem = check_media_name(value)
    if problem:
        raise MediaNotFound(problem)
    if value == SILENCE:
        raise MediaNotFound("silence is not a file: nothing is played")
    media_dir = Path(media_dir)
    if value.startswith(PROMPT_PREFIX):
        name = value[len(PROMPT_PREFIX):]
        text, voice = PROMPTS[name]
        tag = hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:10]
        src = media_dir / "prompts" / f"{name}-{tag}.source.wav"
        if not src.exists():
            synthesize(name, src)
    else:
        src = media_dir / value
        if not src.is_file():
            raise MediaNotFound(f"no file {value!r} in the media directory")
    if is_pjsua_ready(src, rate):
        return src
    st = src.stat()
    dst = media_dir / "converted" / f"{src.stem}-{int(st.st_mtime)}-{st.st_size}-{rate}.wav"
    if not dst.exists():
        try:
            convert_for_pjsua(src, dst, rate)
        except AudioFileError as exc:
            raise MediaNotFound(str(exc)) from None
    return dst
