"""Renders `tmux capture-pane -e -p` output (text with ANSI SGR colours) to a PNG.

Usage: render.py CAPTURE.ansi OUT.png
Colours are xterm's; the font is Debian's DejaVu Sans Mono (fonts-dejavu-core).
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
SIZE = 15
BASE16 = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (204, 204, 204),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (242, 242, 242),
]
DEFAULT_FG = (220, 220, 220)
DEFAULT_BG = (24, 24, 28)


def palette(index):
    if index < 16:
        return BASE16[index]
    if index < 232:
        index -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[index // 36], steps[index // 6 % 6], steps[index % 6])
    grey = 8 + (index - 232) * 10
    return (grey, grey, grey)


class Style:
    def __init__(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def copy(self):
        other = Style()
        other.__dict__.update(self.__dict__)
        return other


def apply_sgr(style, params):
    codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = Style()
        elif code == 1:
            style.bold = True
        elif code == 2:
            style.dim = True
        elif code == 3:
            style.italic = True
        elif code == 4:
            style.underline = True
        elif code == 7:
            style.reverse = True
        elif code == 22:
            style.bold = style.dim = False
        elif code == 23:
            style.italic = False
        elif code == 24:
            style.underline = False
        elif code == 27:
            style.reverse = False
        elif 30 <= code <= 37:
            style.fg = BASE16[code - 30]
        elif 90 <= code <= 97:
            style.fg = BASE16[code - 90 + 8]
        elif code == 39:
            style.fg = None
        elif 40 <= code <= 47:
            style.bg = BASE16[code - 40]
        elif 100 <= code <= 107:
            style.bg = BASE16[code - 100 + 8]
        elif code == 49:
            style.bg = None
        elif code in (38, 48) and i + 1 < len(codes):
            if codes[i + 1] == 5 and i + 2 < len(codes):
                colour = palette(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                colour = tuple(codes[i + 2:i + 5])
                i += 4
            else:
                colour = None
            if code == 38:
                style.fg = colour
            else:
                style.bg = colour
        i += 1
    return style


def parse(text):
    rows = []
    for line in text.rstrip("\n").split("\n"):
        style = Style()
        cells = []
        for part in re.split(r"(\x1b\[[0-9;]*m)", line):
            if part.startswith("\x1b["):
                style = apply_sgr(style, part[2:-1])
            else:
                cells.extend((char, style.copy()) for char in part)
        rows.append(cells)
    return rows


def main():
    capture, out = sys.argv[1], sys.argv[2]
    with open(capture, encoding="utf-8") as f:
        rows = parse(f.read())
    fonts = {
        (False, False): ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", SIZE),
        (True, False): ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", SIZE),
        (False, True): ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Oblique.ttf", SIZE),
        (True, True): ImageFont.truetype(FONT_DIR + "DejaVuSansMono-BoldOblique.ttf", SIZE),
    }
    left, top, right, bottom = fonts[(False, False)].getbbox("M")
    width = round(fonts[(False, False)].getlength("M"))
    height = SIZE + 4
    columns = max(len(r) for r in rows)
    image = Image.new("RGB", (columns * width + 16, len(rows) * height + 16), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, (char, style) in enumerate(row):
            fg = style.fg or DEFAULT_FG
            bg = style.bg or DEFAULT_BG
            if style.reverse:
                fg, bg = bg, fg
            if style.dim:
                fg = tuple((c + b) // 2 for c, b in zip(fg, bg))
            px, py = 8 + x * width, 8 + y * height
            draw.rectangle([px, py, px + width - 1, py + height - 1], fill=bg)
            if char != " ":
                draw.text((px, py + 1), char, font=fonts[(style.bold, style.italic)], fill=fg)
            if style.underline:
                draw.line([px, py + height - 2, px + width - 1, py + height - 2], fill=fg)
    image.save(out)


if __name__ == "__main__":
    main()
