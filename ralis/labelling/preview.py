"""``rounds/<n>/preview.png``: the requested regions drawn on their images."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from ralis.data.base import open_image
from ralis.files.atomic import atomic_write_bytes
from ralis.labelling.formats.base import RequestBox

MAX_IMAGES = 6
TILE_WIDTH = 360


def draw_requests(image: Image.Image, boxes: list[RequestBox], width: int = TILE_WIDTH
                  ) -> Image.Image:
    """One image, scaled to ``width``, with its requested boxes shaded and outlined."""
    scale = width / image.width
    tile = image.convert("RGB").resize((width, max(1, round(image.height * scale))),
                                       Image.BILINEAR)
    shade = Image.new("RGBA", tile.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    for b in boxes:
        xy = [b.left * scale, b.top * scale, (b.left + b.width) * scale - 1,
              (b.top + b.height) * scale - 1]
        draw.rectangle(xy, fill=(255, 210, 0, 70), outline=(255, 210, 0, 255), width=2)
    return Image.alpha_composite(tile.convert("RGBA"), shade).convert("RGB")


def write_preview(project, boxes: list[RequestBox], path: Path) -> Path:
    """The first :data:`MAX_IMAGES` images of a round (most requests first), in a grid."""
    by_image: dict[str, list[RequestBox]] = {}
    for b in boxes:
        by_image.setdefault(b.image, []).append(b)
    chosen = sorted(by_image.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_IMAGES]
    tiles = [draw_requests(open_image(project.infos[name].path, "RGB"), bs)
             for name, bs in chosen]
    cols = min(3, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    height = max(t.height for t in tiles)
    sheet = Image.new("RGB", (cols * TILE_WIDTH + (cols - 1) * 4, rows * height + (rows - 1) * 4),
                      (255, 255, 255))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % cols) * (TILE_WIDTH + 4), (k // cols) * (height + 4)))
    import io

    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return atomic_write_bytes(buf.getvalue(), Path(path))
