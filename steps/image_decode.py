"""Decoding one image, the same way in preprocessing, evaluation and serving: checked, converted, resized.

An image is untrusted bytes. Only PNG, JPEG, WebP and BMP are read; the size its header claims is checked against
MAX_PIXELS before a pixel is decoded (a decompression bomb, a small file that claims a huge image, is refused
without allocating it); a mode outside MODES is refused (16-bit, float, CMYK, ...). Grayscale modes (1, L, LA) give
one channel, colour modes (P, RGB, RGBA) three; an alpha channel is dropped. The image is resized to size x size
(bilinear, antialiased when shrinking: Pillow's resize) and returned as uint8 (channels, size, size).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
# channels of each accepted mode; LA and RGBA lose their alpha channel, P (palette) is read as RGB
MODES = {"1": 1, "L": 1, "LA": 1, "P": 3, "RGB": 3, "RGBA": 3}
# the most pixels an image may claim: 25 megapixels (a 5000 x 5000 photo, 75 MB as RGB) is decoded, anything larger
# is refused before decoding; a model server decodes one image per request thread, so this bounds its memory
MAX_PIXELS = 25_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for any decode path that skips `open_image`


class ImageError(ValueError):
    """The bytes are not an image this code reads: the message says why."""


def channel_name(channels: int) -> str:
    return "grayscale (1 channel)" if channels == 1 else "colour (3 channels)"


def open_image(data: bytes) -> Image.Image:
    """The image's header read and checked (format, claimed size, mode); its pixels are not decoded yet."""
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is checked just below
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # Pillow's guard (twice MAX_PIXELS): the header claims far too much
        raise ImageError(f"the image claims more than twice the limit of {MAX_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"not an image in a format this reads ({', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"not a readable image ({type(error).__name__}: {str(error)[:100]})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(too_large(width, height))
    if width < 1 or height < 1:
        raise ImageError(f"the image has no pixels ({width}x{height})")
    if image.mode not in MODES:
        raise ImageError(f"mode {image.mode} is not read (grayscale or colour: {', '.join(MODES)})")
    return image


def too_large(width: int, height: int) -> str:
    return f"the image claims {width}x{height} = {width * height:,} pixels, over the limit of {MAX_PIXELS:,}"


def channels_of(image: Image.Image) -> int:
    return MODES[image.mode]


def to_array(image: Image.Image, channels: int, size: int) -> np.ndarray:
    """Decode `image` (from open_image), as uint8 (channels, size, size); ImageError when its pixels cannot be read
    (a truncated or corrupt file) or its channels are not `channels`."""
    if channels_of(image) != channels:
        raise ImageError(
            f"the image is {image.mode}, {channel_name(channels_of(image))}; expected {channel_name(channels)}"
        )
    try:
        image.load()
        converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (size, size):
            converted = converted.resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(converted, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt data
        raise ImageError(f"the image data cannot be decoded ({type(error).__name__}: {str(error)[:100]})") from None
    return pixels[None] if channels == 1 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def decode(data: bytes, channels: int, size: int) -> np.ndarray:
    """Bytes of one image as uint8 (channels, size, size); ImageError naming what is wrong."""
    return to_array(open_image(data), channels, size)
